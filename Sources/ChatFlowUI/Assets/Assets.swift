/// The page, served from the binary: plain HTML, CSS and one script, no build step.
enum Assets {
    /// A page shell; the script renders `kind` (`board`, `instance`, `feature`) from the API.
    static func page(_ kind: String, title: String, meta: [String: String]) -> String {
        let tags = meta.sorted { $0.key < $1.key }.map { "<meta name=\"\(escape($0.key))\" content=\"\(escape($0.value))\">" }.joined(separator: "\n")
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="chatflow-page" content="\(escape(kind))">
            \(tags)
            <title>\(escape(title))</title>
            <link rel="stylesheet" href="/static/app.css">
            </head>
            <body>
            <header><a href="/" class="brand">ChatFlow</a><span id="live" class="live off" title="live updates">●</span><span id="crumb"></span></header>
            <main id="main"><p class="muted">Loading…</p></main>
            <script src="/static/app.js"></script>
            </body>
            </html>
            """
    }

    static let icon = ##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2f6fde"/><path d="M4 4h8v2H6v4h6v2H4z" fill="#fff"/></svg>"##

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
