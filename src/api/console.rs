//! The console: the web page operations staff work in (campaigns and their funnels, the rule
//! editor with diagnostics as they type, changes, approvals, deploys and rollbacks, the audit log,
//! one subscriber's story). One self-contained bundle — plain HTML, CSS and JavaScript kept in
//! `src/api/console/` and compiled into the binary — so there is nothing to build or install and
//! no third-party site to reach. The files are public; every piece of data the page shows comes
//! from the `/v1` API with the user's own credentials, so the console can do exactly what its
//! user can do with `curl`.
//!
//! Behind a reverse proxy the console lives under a prefix (`[api] base_path = "/tidings"`): the
//! page is told the prefix and builds every URL under it, and the endpoint takes requests with
//! the prefix or without it, so a proxy may keep it or strip it.

use crate::http::Response;

const INDEX: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const I18N_JS: &str = include_str!("console/i18n.js");
const CHART_JS: &str = include_str!("console/chart.js");
const APP_CSS: &str = include_str!("console/app.css");

/// `[api] base_path` checked: "" (no prefix) or `/a/b`, no trailing slash, characters safe in
/// a URL path and an HTML attribute.
pub fn check_base_path(s: &str) -> Result<String, String> {
    let s = s.trim_end_matches('/');
    let ok = s.is_empty()
        || (s.starts_with('/')
            && s.len() <= 100
            && !s.contains("//")
            && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
            && s.split('/').all(|p| p != "." && p != ".."));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("[api] base_path {s:?}: a path like \"/tidings\" (letters, digits, - _ . and /)"))
    }
}

/// A path as the endpoint routes it: `base` taken off the front when the proxy kept it.
pub fn local<'a>(path: &'a str, base: &str) -> &'a str {
    if base.is_empty() {
        return path;
    }
    match path.strip_prefix(base) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// The console's files at `/console/…` (`path` without the base path); `None`: not a console
/// path.
pub fn file(path: &str, base: &str) -> Option<Response> {
    let (content_type, body): (&'static str, bytes::Bytes) = match path {
        "/console" | "/console/" | "/console/index.html" => {
            ("text/html; charset=utf-8", INDEX.replace("{{BASE}}", base).into())
        }
        "/console/app.js" => ("text/javascript; charset=utf-8", APP_JS.into()),
        "/console/i18n.js" => ("text/javascript; charset=utf-8", I18N_JS.into()),
        "/console/chart.js" => ("text/javascript; charset=utf-8", CHART_JS.into()),
        "/console/app.css" => ("text/css; charset=utf-8", APP_CSS.into()),
        _ => return None,
    };
    Some(Response { status: 200, content_type, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_path_is_a_plain_url_prefix() {
        assert_eq!(check_base_path("").unwrap(), "");
        assert_eq!(check_base_path("/tidings/").unwrap(), "/tidings");
        assert_eq!(check_base_path("/ops/tidings-1").unwrap(), "/ops/tidings-1");
        for bad in ["tidings", "/a//b", "/a/../b", "/a\"><script>", "/空"] {
            assert!(check_base_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_base_path_is_taken_off_when_the_proxy_keeps_it() {
        assert_eq!(local("/tidings/v1/rules", "/tidings"), "/v1/rules");
        assert_eq!(local("/tidings", "/tidings"), "/");
        assert_eq!(local("/v1/rules", "/tidings"), "/v1/rules", "a proxy that strips it");
        assert_eq!(local("/tidingsx/v1", "/tidings"), "/tidingsx/v1");
        assert_eq!(local("/v1/rules", ""), "/v1/rules");
    }

    #[test]
    fn the_page_names_its_base_path() {
        let page = file("/console/", "/tidings").unwrap();
        let html = String::from_utf8(page.body.to_vec()).unwrap();
        assert!(html.contains(r#"content="/tidings""#), "{html}");
        assert!(html.contains(r#"src="/tidings/console/app.js""#), "{html}");
        assert!(!html.contains("{{BASE}}"));
        let plain = String::from_utf8(file("/console", "").unwrap().body.to_vec()).unwrap();
        assert!(plain.contains(r#"src="/console/app.js""#), "the loopback default: no prefix");
        assert!(file("/console/nope.js", "").is_none());
    }
}
