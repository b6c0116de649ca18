module github.com/tend-init/tend

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/sirupsen/logrus v1.10.2
	golang.org/x/sys v0.50.0
)
