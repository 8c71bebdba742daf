module github.com/classwaves/classwaves/loadtest

go 1.26.0

require github.com/classwaves/classwaves v0.0.0

require github.com/gorilla/websocket v1.5.3

replace github.com/classwaves/classwaves => ../
