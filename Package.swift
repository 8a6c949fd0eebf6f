// swift-tools-version: 6.2
import PackageDescription

// A Linux package: the engine uses flock and Glibc, the watcher inotify, epoll, pidfd and memfd.
let package = Package(
    name: "ChatFlow",
    products: [
        .library(name: "ChatFlow", targets: ["ChatFlow"]),
        .library(name: "ChatFlowWatch", targets: ["ChatFlowWatch"]),
        .executable(name: "chatflow", targets: ["chatflow"]),
        .executable(name: "chatflow-watch", targets: ["chatflow-watch"]),
        .executable(name: "chatflow-mcp", targets: ["chatflow-mcp"]),
        .executable(name: "chatflow-ui", targets: ["chatflow-ui"]),
        .executable(name: "chatflow-pg", targets: ["chatflow-pg"]),
        .executable(name: "chatflow-watch-pg", targets: ["chatflow-watch-pg"]),
        .executable(name: "chatflow-bench", targets: ["chatflow-bench"]),
        .executable(name: "chatflow-torture", targets: ["chatflow-torture"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
        // No default traits: swift-configuration and full Foundation are not needed here.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // Header-only shims for the few libc calls Swift cannot import (variadic syscall, macros).
        .systemLibrary(name: "CChatFlowShims", path: "Sources/CChatFlowShims"),
        // libinotifytools ships no pkg-config file: the module map links it directly.
        .systemLibrary(name: "CInotifyTools", path: "Sources/CInotifyTools"),
        // The benchmark's peer for the write path (Debian's libsqlite3-dev); nothing else links it.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        // CChatFlowShims is header-only (syscall wrappers): the engine still links nothing.
        .target(name: "ChatFlow", dependencies: ["CChatFlowShims"]),
        .target(
            name: "ChatFlowWatch",
            dependencies: [
                "ChatFlow", "CInotifyTools", "CChatFlowShims",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]),
        // The command's subcommands, shared by `chatflow` (file store) and `chatflow-pg`.
        .target(
            name: "ChatFlowCommand",
            dependencies: ["ChatFlow", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "chatflow", dependencies: ["ChatFlowCommand", "ChatFlow"]),
        // The PostgreSQL store: its own module, so the engine and `chatflow` link no NIO.
        .target(
            name: "ChatFlowPostgres",
            dependencies: [
                "ChatFlow", "ChatFlowWatch",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // `chatflow --store postgres://…` execs this: the same subcommands on the PostgreSQL store.
        .executableTarget(name: "chatflow-pg", dependencies: ["ChatFlowCommand", "ChatFlowPostgres", "ChatFlow"]),
        // The watcher's command line, shared by `chatflow-watch` (the files; no database driver,
        // so no Foundation or NIO in the process) and `chatflow-watch-pg`, which it execs.
        .target(
            name: "ChatFlowWatchCommand",
            dependencies: [
                "ChatFlowWatch", "ChatFlow", "ChatFlowCommand", "CChatFlowShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(name: "chatflow-watch", dependencies: ["ChatFlowWatchCommand"]),
        .executableTarget(
            name: "chatflow-watch-pg",
            dependencies: ["ChatFlowWatchCommand", "ChatFlowWatch", "ChatFlowPostgres", "ChatFlow"]),
        // The MCP server's tools and resources; its own executable, so `chatflow` never links the SDK.
        .target(
            name: "ChatFlowMCP",
            dependencies: [
                "ChatFlow", "ChatFlowWatch",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "chatflow-mcp",
            dependencies: [
                "ChatFlowMCP", "ChatFlow", "ChatFlowWatch", "ChatFlowPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // The web view (`chatflow ui`): board, instance and feature pages, JSON API, server-sent events.
        .target(
            name: "ChatFlowUI",
            dependencies: [
                "ChatFlow", "ChatFlowWatch",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "chatflow-ui",
            dependencies: [
                "ChatFlowUI", "ChatFlow", "ChatFlowPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Process harness shared by the benchmark and the torture suite.
        .target(name: "ChatFlowHarness", dependencies: ["ChatFlow"]),
        .executableTarget(
            name: "chatflow-bench",
            dependencies: [
                "ChatFlow", "ChatFlowWatch", "ChatFlowHarness", "CSQLite", "ChatFlowPostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]),
        .executableTarget(
            name: "chatflow-torture",
            dependencies: ["ChatFlow", "ChatFlowHarness", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // One temporary directory, one `eventually`, one child-process runner for every test target.
        .target(name: "ChatFlowTestSupport", path: "Tests/Support"),
        .testTarget(name: "ChatFlowTests", dependencies: ["ChatFlow", "ChatFlowWatch", "ChatFlowTestSupport", "ChatFlowPostgres"]),
        .testTarget(name: "ChatFlowWatchTests", dependencies: ["ChatFlowWatch", "ChatFlow", "ChatFlowTestSupport"]),
        .testTarget(
            name: "ChatFlowServersTests",
            dependencies: [
                "ChatFlowMCP", "ChatFlowUI", "ChatFlow", "ChatFlowWatch", .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]),
        .testTarget(
            name: "EndToEndTests", dependencies: ["ChatFlow", "ChatFlowWatch", "ChatFlowHarness", "ChatFlowTestSupport", "ChatFlowPostgres"]),
    ],
    swiftLanguageModes: [.v6]
)
