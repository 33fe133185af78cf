module aftershock.local/sampleapp

go 1.24
