//! Serves the web app's files from a directory, next to the MQTT endpoint, with tower-http's
//! `ServeDir`: GET and HEAD only, percent-decoded paths that stay inside the root (no `..`,
//! no symbolic link that leads out of it), precompressed copies (`<file>.br`, `<file>.gz`,
//! which platforms/web/build.sh writes) for browsers that accept them, and conditional
//! requests (`Last-Modified`, answered 304).
//!
//! Caching: a file whose name carries its content hash (`name.<8 to 32 hex digits>.ext`) never
//! changes, so browsers may keep it for a year without asking; everything else (the page,
//! the service worker) is revalidated on every load, cheaply, so an update is seen at once.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::ServeDir;

/// `Cache-Control` of files named by their content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of everything else: keep, but ask first.
const REVALIDATE: &str = "no-cache";

/// The files of one web build.
#[derive(Debug, Clone)]
pub struct WebRoot {
    /// The root, with its symbolic links resolved.
    root: PathBuf,
    files: ServeDir,
}

impl WebRoot {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let root = dir.canonicalize().unwrap_or_else(|_| dir.clone());
        let files = ServeDir::new(&root)
            .precompressed_br()
            .precompressed_gzip()
            .append_index_html_on_directories(true);
        Self { root, files }
    }

    /// Answers one request for a file (`index.html` for a directory).
    pub async fn serve(&self, request: Request<Body>) -> Response {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        let path = request.uri().path().to_owned();
        if self.leads_outside(&path) {
            return StatusCode::NOT_FOUND.into_response();
        }
        let Ok(response) = self.files.clone().oneshot(request).await;
        let mut response = response.map(Body::new);
        if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
            let policy = if named_by_content(&path) {
                IMMUTABLE
            } else {
                REVALIDATE
            };
            (response.headers_mut())
                .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
        }
        response
    }

    /// Whether the file `url_path` names resolves (through symbolic links) outside the root.
    fn leads_outside(&self, url_path: &str) -> bool {
        let decoded = percent_encoding::percent_decode_str(url_path).decode_utf8_lossy();
        let candidate = self.root.join(decoded.trim_start_matches('/'));
        candidate
            .canonicalize()
            .is_ok_and(|real| !real.starts_with(&self.root))
    }
}

/// Whether a URL path's file name carries a content hash: `name.<hash>.ext`, the hash 8 to
/// 32 lowercase hex digits.
fn named_by_content(url_path: &str) -> bool {
    let name = url_path.rsplit('/').next().unwrap_or_default();
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 3
        && parts[1..parts.len() - 1].iter().any(|part| {
            (8..=32).contains(&part.len())
                && part
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, accept_encoding: Option<&str>) -> Request<Body> {
        let mut builder = Request::get(path);
        if let Some(value) = accept_encoding {
            builder = builder.header(header::ACCEPT_ENCODING, value);
        }
        builder.body(Body::empty()).unwrap()
    }

    async fn body(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap()
            .to_vec()
    }

    fn site(name: &str) -> (PathBuf, WebRoot) {
        let dir =
            std::env::temp_dir().join(format!("peerchat-static-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("app.3fa9c2d1.wasm"), b"plain").unwrap();
        std::fs::write(dir.join("app.3fa9c2d1.wasm.gz"), b"zipped").unwrap();
        std::fs::write(dir.join("app.3fa9c2d1.wasm.br"), b"brotli").unwrap();
        std::fs::write(dir.join("index.html"), b"<!doctype html>").unwrap();
        let root = WebRoot::new(&dir);
        (dir, root)
    }

    #[tokio::test]
    async fn the_best_precompressed_copy_a_browser_accepts_is_served() {
        let (dir, root) = site("encodings");
        let wasm = "/app.3fa9c2d1.wasm";
        let brotli = root.serve(get(wasm, Some("gzip, deflate, br"))).await;
        assert_eq!(brotli.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(brotli.headers()[header::CONTENT_TYPE], "application/wasm");
        assert_eq!(body(brotli).await, b"brotli");
        let zipped = root.serve(get(wasm, Some("gzip"))).await;
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(body(zipped).await, b"zipped");
        let plain = root.serve(get(wasm, None)).await;
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body(plain).await, b"plain");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn files_named_by_content_are_kept_and_the_page_is_revalidated() {
        let (dir, root) = site("caching");
        let wasm = root.serve(get("/app.3fa9c2d1.wasm", None)).await;
        assert_eq!(wasm.headers()[header::CACHE_CONTROL], IMMUTABLE);
        let page = root.serve(get("/", None)).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[header::CACHE_CONTROL], REVALIDATE);
        let modified = page.headers()[header::LAST_MODIFIED].clone();
        let again = Request::get("/")
            .header(header::IF_MODIFIED_SINCE, modified)
            .body(Body::empty())
            .unwrap();
        assert_eq!(root.serve(again).await.status(), StatusCode::NOT_MODIFIED);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn nothing_outside_the_root_is_served() {
        let (dir, root) = site("escapes");
        std::os::unix::fs::symlink("/etc", dir.join("etc")).unwrap();
        for path in [
            "/../etc/passwd",
            "/etc/passwd",
            "/%2e%2e/etc/passwd",
            "/etc%2fpasswd",
        ] {
            let response = root.serve(get(path, None)).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
        let post = Request::post("/index.html").body(Body::empty()).unwrap();
        assert_eq!(
            root.serve(post).await.status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn content_hashes_are_recognised_in_file_names() {
        for hashed in ["/app.3fa9c2d1.wasm", "/x/peerchat.0123456789abcdef.js"] {
            assert!(named_by_content(hashed), "{hashed}");
        }
        for plain in [
            "/index.html",
            "/app.wasm",
            "/sw.js",
            "/a.b.c",
            "/app.3FA9C2D1.wasm",
        ] {
            assert!(!named_by_content(plain), "{plain}");
        }
    }
}
