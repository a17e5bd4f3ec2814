//! Serves the web app's files from a directory, next to the MQTT endpoint.
//!
//! Small on purpose: GET only, no directory listings, nothing outside the root, and a
//! content type for every file a web build produces. A build may ship `<file>.gz` next to a
//! file (platforms/web/build.sh does); browsers that accept gzip get that instead, so the
//! first load moves the compressed bytes without compressing on every request.

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The files of one web build.
#[derive(Debug, Clone)]
pub struct WebRoot(PathBuf);

impl WebRoot {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self(dir.into())
    }

    /// Answers one request: the file at its path, `index.html` for a directory.
    pub async fn serve(&self, request: Request<Body>) -> Response {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        let Some(mut path) = resolve(&self.0, request.uri().path()) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        if path.is_dir() {
            path.push("index.html");
        }
        let gzip = accepts_gzip(&request).then(|| gzipped(&path));
        let (bytes, encoded) = match gzip {
            Some(gz) => match tokio::fs::read(&gz).await {
                Ok(bytes) => (Ok(bytes), true),
                Err(_) => (tokio::fs::read(&path).await, false),
            },
            None => (tokio::fs::read(&path).await, false),
        };
        let Ok(bytes) = bytes else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let mut response = Response::new(Body::from(bytes));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&path)),
        );
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if encoded {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    }
}

/// Whether the request's `Accept-Encoding` takes gzip: listed (or `*`) with a non-zero
/// weight, an explicit `gzip` entry counting over `*` (RFC 9110 §12.5.3).
fn accepts_gzip(request: &Request<Body>) -> bool {
    let mut gzip = None;
    let mut any = None;
    let codings = request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for coding in codings {
        let mut parts = coding.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        let weight = parts
            .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
        if name.eq_ignore_ascii_case("gzip") {
            gzip = Some(weight > 0.0);
        } else if name == "*" {
            any = Some(weight > 0.0);
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Where a precompressed copy of `path` would be.
fn gzipped(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    PathBuf::from(name)
}

/// Maps a URL path to a file under `root`, refusing anything that would leave it.
fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for component in Path::new(url_path.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(path)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        let root = Path::new("/srv/web");
        assert_eq!(
            resolve(root, "/app.js"),
            Some(PathBuf::from("/srv/web/app.js"))
        );
        assert_eq!(resolve(root, "/"), Some(PathBuf::from("/srv/web")));
        assert_eq!(
            resolve(root, "/a/./b.wasm"),
            Some(PathBuf::from("/srv/web/a/b.wasm"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/a/../../x"), None);
    }

    #[test]
    fn wasm_and_scripts_get_their_types() {
        assert_eq!(content_type(Path::new("x.wasm")), "application/wasm");
        assert_eq!(
            content_type(Path::new("x.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("x")), "application/octet-stream");
    }

    fn request(accept_encoding: Option<&str>) -> Request<Body> {
        let mut builder = Request::get("/app.wasm");
        if let Some(value) = accept_encoding {
            builder = builder.header(header::ACCEPT_ENCODING, value);
        }
        builder.body(Body::empty()).unwrap()
    }

    #[test]
    fn gzip_is_used_only_when_accepted() {
        assert!(accepts_gzip(&request(Some("gzip, deflate, br"))));
        assert!(accepts_gzip(&request(Some("br;q=1.0, gzip;q=0.8"))));
        assert!(accepts_gzip(&request(Some("*"))));
        assert!(!accepts_gzip(&request(Some("gzip;q=0, br"))));
        assert!(!accepts_gzip(&request(Some("gzip;q=0.0"))));
        assert!(!accepts_gzip(&request(Some("gzip;q=0, *"))));
        assert!(!accepts_gzip(&request(Some("*;q=0"))));
        assert!(!accepts_gzip(&request(Some("br"))));
        assert!(!accepts_gzip(&request(None)));
    }

    #[tokio::test]
    async fn precompressed_files_are_served_to_browsers_that_accept_them() {
        let dir = std::env::temp_dir().join(format!("peerchat-static-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("app.wasm"), b"plain").unwrap();
        std::fs::write(dir.join("app.wasm.gz"), b"zipped").unwrap();
        let root = WebRoot::new(&dir);

        let zipped = root.serve(request(Some("gzip"))).await;
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(zipped.headers()[header::CONTENT_TYPE], "application/wasm");
        let body = axum::body::to_bytes(zipped.into_body(), 64).await.unwrap();
        assert_eq!(&body[..], b"zipped");

        let plain = root.serve(request(None)).await;
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let body = axum::body::to_bytes(plain.into_body(), 64).await.unwrap();
        assert_eq!(&body[..], b"plain");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
