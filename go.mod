module github.com/sluicelb/sluice

go 1.26.8

require (
	github.com/pires/go-proxyproto v0.15.0
	golang.org/x/sys v0.50.0
)
