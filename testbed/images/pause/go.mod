module aftershock.local/pause

go 1.24
