//! The console, embedded in the binary from `web/`. Every file is served with an ETag derived
//! from its content and `Cache-Control: no-cache`, so browsers revalidate cheaply and never run
//! a stale console after an upgrade. Paths without an extension fall back to `index.html` so the
//! console's own routes survive a reload; `/help` and the paths under it, the public help centre,
//! get `help/index.html`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "$CARGO_MANIFEST_DIR/web/"]
#[exclude = "*.md"]
#[exclude = "tests/*"]
struct Console;

pub fn serve(req: &HttpRequest) -> Option<HttpResponse> {
    let path = req.path().trim_start_matches('/');
    // The chat widget's one script tag asks for `/widget.js`.
    let path = if path == "widget.js" {
        "widget/widget.js"
    } else if path == "help" || (path.starts_with("help/") && !path.contains('.')) {
        // The public help centre is its own page; its routes (`/help/articles/7`) get its index.
        "help/index.html"
    } else {
        path
    };
    let (name, file) = match Console::get(if path.is_empty() { "index.html" } else { path }) {
        Some(file) => (if path.is_empty() { "index.html" } else { path }, file),
        None if !path.rsplit('/').next().unwrap_or("").contains('.') => {
            ("index.html", Console::get("index.html")?)
        }
        None => return None,
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"));
    if not_modified {
        return Some(response.finish());
    }
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    let content_type = if mime.type_() == mime_guess::mime::TEXT
        || mime.subtype() == mime_guess::mime::JAVASCRIPT
        || mime.subtype() == mime_guess::mime::JSON
    {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    Some(
        response
            .content_type(content_type)
            .body(file.data.into_owned()),
    )
}
