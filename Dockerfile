# One image for every target: the binary chooses its module with -target.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum go.work ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/classwaves ./cmd/classwaves

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/classwaves /classwaves
EXPOSE 3000 9090
ENTRYPOINT ["/classwaves"]
