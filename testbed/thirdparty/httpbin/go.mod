module aftershock.local/testbed/httpbin

go 1.26.8

tool github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin

require github.com/mccutchen/go-httpbin/v2 v2.26.0 // indirect
