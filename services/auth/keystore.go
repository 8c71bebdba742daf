package auth

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/classwaves/classwaves/pkg/store"
	"github.com/classwaves/classwaves/services/auth/token"
)

// KeyStore is the persistent token.KeyStore: the access token signing keys in auth.signing_keys
// (PKCS#8 PEM, created and retired times), shared by every auth replica on the database. At most
// one row is current (retired_at NULL); a partial unique index enforces it, so two replicas
// rotating from the same view cannot both win.
//
// The table is created by the auth service's migrations: call Migrate before NewKeySet.
type KeyStore struct {
	db       *store.DB
	postgres bool
	table    string
}

var _ token.KeyStore = (*KeyStore)(nil)

// NewKeyStore returns the KeyStore on db.
func NewKeyStore(db *store.DB) *KeyStore {
	return &KeyStore{db: db, postgres: db.Provider() == store.Postgres, table: db.Table("auth", "signing_keys")}
}

func (k *KeyStore) at(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if k.postgres {
		return t
	}
	return t.UnixMicro()
}

// LoadKeys implements token.KeyStore.
func (k *KeyStore) LoadKeys(ctx context.Context) ([]token.StoredKey, error) {
	rows, err := k.db.QueryContext(ctx, "SELECT id, private_key_pem, created_at, retired_at FROM "+k.table)
	if err != nil {
		return nil, fmt.Errorf("auth keystore: load: %w", err)
	}
	defer rows.Close()
	var out []token.StoredKey
	for rows.Next() {
		var (
			sk  token.StoredKey
			pem string
		)
		if err := rows.Scan(&sk.ID, &pem, dbTime{&sk.CreatedAt}, dbTime{&sk.RetiredAt}); err != nil {
			return nil, fmt.Errorf("auth keystore: load: %w", err)
		}
		sk.PrivateKeyPEM = []byte(pem)
		out = append(out, sk)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth keystore: load: %w", err)
	}
	return out, nil
}

// RotateKey implements token.KeyStore, in one transaction: retire currentID (which must be the
// current key, or no key is current when currentID is ""), then insert next.
func (k *KeyStore) RotateKey(ctx context.Context, currentID string, next token.StoredKey, retireAt time.Time) error {
	return k.db.InTx(ctx, func(tx *sql.Tx) error {
		var dup int
		if err := tx.QueryRowContext(ctx, k.db.Rebind("SELECT COUNT(*) FROM "+k.table+" WHERE id = ?"), next.ID).Scan(&dup); err != nil {
			return fmt.Errorf("auth keystore: rotate: %w", err)
		}
		if dup > 0 {
			return fmt.Errorf("auth keystore: key %q already stored", next.ID)
		}
		if currentID == "" {
			var current int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+k.table+" WHERE retired_at IS NULL").Scan(&current); err != nil {
				return fmt.Errorf("auth keystore: rotate: %w", err)
			}
			if current > 0 {
				return token.ErrRotationConflict
			}
		} else {
			n, err := rowsAffected(tx.ExecContext(ctx, k.db.Rebind("UPDATE "+k.table+
				" SET retired_at = ? WHERE id = ? AND retired_at IS NULL"), k.at(retireAt), currentID))
			if err != nil {
				return fmt.Errorf("auth keystore: retire key: %w", err)
			}
			if n == 0 {
				return token.ErrRotationConflict
			}
		}
		_, err := tx.ExecContext(ctx, k.db.Rebind("INSERT INTO "+k.table+
			" (id, private_key_pem, created_at, retired_at) VALUES (?, ?, ?, NULL)"),
			next.ID, string(next.PrivateKeyPEM), k.at(next.CreatedAt))
		if store.IsUniqueViolation(err) {
			// Another replica made its key current since this transaction looked.
			return token.ErrRotationConflict
		}
		if err != nil {
			return fmt.Errorf("auth keystore: insert key: %w", err)
		}
		return nil
	})
}

// DeleteRetiredBefore implements token.KeyStore.
func (k *KeyStore) DeleteRetiredBefore(ctx context.Context, cutoff time.Time) (int, error) {
	n, err := rowsAffected(k.db.ExecContext(ctx, k.db.Rebind("DELETE FROM "+k.table+
		" WHERE retired_at IS NOT NULL AND retired_at < ?"), k.at(cutoff)))
	if err != nil {
		return 0, fmt.Errorf("auth keystore: prune: %w", err)
	}
	return int(n), nil
}
