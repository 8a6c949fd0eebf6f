import ChatFlowWatchCommand

// The file watcher: a `postgres://` store is handed over to chatflow-watch-pg.
WatchMain.run()
