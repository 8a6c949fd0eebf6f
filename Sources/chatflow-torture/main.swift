TortureCommand.main()
