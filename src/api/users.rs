//! Who is asking: the users and roles of the admin API (`[[api.users]]` in the config), each
//! with a bearer token or a password hash, and the old single `admin_token` as user `admin`.
//!
//! Roles are ordered — viewer < author < approver < admin — and each allows what the one below
//! it does: a viewer reads (rules, metrics, explain, the deploy state, the audit log), an author
//! also submits rule-pack changes and deploys approved ones, an approver also approves, rejects
//! and rolls back, an admin also reloads the rule files directly. Whether an approver may
//! approve a given change (not their own) is the deploy flow's to say, not the role's.
//!
//! Password hashes are PBKDF2-HMAC-SHA256 (NIST SP 800-132) with a random salt, written
//! `$pbkdf2-sha256$i=ITERATIONS$SALT$HASH` (base64 without padding, as PHC strings are) by
//! `tidings passwd`; a user sends `Authorization: Basic`. Checking a hash takes a deliberate
//! fraction of a second, so a password checked once is remembered by a SHA-256 of the
//! credentials (in memory only) and later requests of the same session cost a hash, not a
//! PBKDF2 run.

use crate::http::Request;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Mutex;

/// What a user may do; each role allows what the ones before it do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Author,
    Approver,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Author => "author",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

/// `[[api.users]]`: a name, a role, and a bearer token or a password hash (one of the two).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub token: String,
    /// `$pbkdf2-sha256$i=…$salt$hash`, from `tidings passwd`.
    #[serde(default)]
    pub password_hash: String,
}

/// A user as a request is identified: who, and in which role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    pub role: Role,
}

enum Secret {
    Token(String),
    Password(PasswordHash),
}

struct Account {
    user: User,
    secret: Secret,
}

/// The configured users, ready to identify requests.
pub struct Users {
    accounts: Vec<Account>,
    /// SHA-256 of `name:password` credentials whose PBKDF2 check passed (see the module comment).
    checked: Mutex<HashSet<[u8; 32]>>,
}

/// At most this many remembered credentials; past it the memory starts over.
const CHECKED_MAX: usize = 1024;

impl Users {
    /// The users of `[api]`: the configured ones and, when `admin_token` is set, `admin`.
    /// Every mistake (a duplicate name, a user with no secret or two, a bad hash) at once.
    pub fn new(admin_token: &str, users: &[UserConfig]) -> Result<Users, String> {
        let mut accounts = Vec::new();
        let mut errors = Vec::new();
        if !admin_token.is_empty() {
            accounts.push(Account {
                user: User { name: "admin".into(), role: Role::Admin },
                secret: Secret::Token(admin_token.into()),
            });
        }
        for u in users {
            let name = u.name.trim();
            if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c == ':') {
                errors.push(format!("user {:?}: a name is 1 to 64 characters, no ':' or control characters", u.name));
                continue;
            }
            if accounts.iter().any(|a| a.user.name == name) {
                let why = if name == "admin" { " (admin_token is user `admin`)" } else { "" };
                errors.push(format!("user {name}: named twice{why}"));
                continue;
            }
            let secret = match (u.token.is_empty(), u.password_hash.is_empty()) {
                (false, true) if u.token.len() < 16 => {
                    errors.push(format!("user {name}: a token is at least 16 characters"));
                    continue;
                }
                (false, true) => Secret::Token(u.token.clone()),
                (true, false) => match PasswordHash::parse(&u.password_hash) {
                    Ok(h) => Secret::Password(h),
                    Err(e) => {
                        errors.push(format!("user {name}: password_hash: {e}"));
                        continue;
                    }
                },
                _ => {
                    errors.push(format!("user {name}: give a token or a password_hash (one of the two)"));
                    continue;
                }
            };
            if let Secret::Token(t) = &secret {
                if accounts.iter().any(|a| matches!(&a.secret, Secret::Token(o) if o == t)) {
                    errors.push(format!("user {name}: the same token as another user"));
                    continue;
                }
            }
            accounts.push(Account { user: User { name: name.into(), role: u.role }, secret });
        }
        if errors.is_empty() { Ok(Users { accounts, checked: Mutex::default() }) } else { Err(errors.join("; ")) }
    }

    /// No user at all: every authenticated endpoint refuses every request.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The user a request's `Authorization` names (a bearer token, or Basic name and password),
    /// if the credentials are right.
    pub fn identify(&self, req: &Request) -> Option<User> {
        self.identify_by(req.header("authorization")?)
    }

    /// The user an `Authorization` header's value names, if the credentials are right.
    pub fn identify_by(&self, auth: &str) -> Option<User> {
        if let Some(token) = auth.strip_prefix("Bearer ") {
            let token = token.trim();
            return self
                .accounts
                .iter()
                .find(|a| matches!(&a.secret, Secret::Token(t) if same(token.as_bytes(), t.as_bytes())))
                .map(|a| a.user.clone());
        }
        let basic = auth.strip_prefix("Basic ")?;
        let raw = base64::engine::general_purpose::STANDARD.decode(basic.trim()).ok()?;
        let creds = String::from_utf8(raw).ok()?;
        let (name, password) = creds.split_once(':')?;
        let account = self.accounts.iter().find(|a| a.user.name == name)?;
        let Secret::Password(hash) = &account.secret else { return None };
        let key: [u8; 32] = Sha256::digest(creds.as_bytes()).into();
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if checked.contains(&key) {
            return Some(account.user.clone());
        }
        drop(checked);
        if !hash.verify(password) {
            return None;
        }
        checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if checked.len() >= CHECKED_MAX {
            checked.clear();
        }
        checked.insert(key);
        Some(account.user.clone())
    }
}

/// Equal bytes, compared in constant time for equal lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A parsed `$pbkdf2-sha256$i=…$salt$hash`.
pub struct PasswordHash {
    iterations: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
pub const DEFAULT_ITERATIONS: u32 = 600_000;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

impl PasswordHash {
    pub fn parse(s: &str) -> Result<PasswordHash, String> {
        let parts: Vec<&str> = s.split('$').collect();
        let ["", "pbkdf2-sha256", i, salt, hash] = parts.as_slice() else {
            return Err("expected $pbkdf2-sha256$i=ITERATIONS$SALT$HASH (make one with `tidings passwd`)".into());
        };
        let iterations = i
            .strip_prefix("i=")
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| *n >= 1000)
            .ok_or("the iterations are i=N with N at least 1000")?;
        let salt = B64.decode(salt).map_err(|_| "the salt is not base64")?;
        let hash = B64.decode(hash).map_err(|_| "the hash is not base64")?;
        if salt.len() < 8 || hash.len() != 32 {
            return Err("a salt of at least 8 bytes and a 32-byte hash".into());
        }
        Ok(PasswordHash { iterations, salt, hash })
    }

    /// A new hash of `password` with a fresh random salt.
    pub fn make(password: &str, iterations: u32) -> Result<String, String> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| format!("no random salt: {e}"))?;
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut out);
        Ok(format!("$pbkdf2-sha256$i={iterations}${}${}", B64.encode(salt), B64.encode(out)))
    }

    pub fn verify(&self, password: &str) -> bool {
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &self.salt, self.iterations, &mut out);
        same(&out, &self.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: &str) -> Request {
        let mut headers = hyper::HeaderMap::new();
        headers.insert("authorization", auth.parse().unwrap());
        Request {
            method: hyper::Method::GET,
            path: "/v1/rules".into(),
            query: Default::default(),
            query_string: String::new(),
            headers,
            body: bytes::Bytes::new(),
            peer: None,
        }
    }

    fn basic(name: &str, pw: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{name}:{pw}")))
    }

    #[test]
    fn tokens_and_password_hashes_identify_their_users_and_nothing_else() {
        let hash = PasswordHash::make("正确的马电池", 1000).unwrap();
        let users = Users::new(
            "adm-token",
            &[
                UserConfig {
                    name: "li".into(),
                    role: Role::Author,
                    token: "li-token-0123456789".into(),
                    password_hash: String::new(),
                },
                UserConfig { name: "wang".into(), role: Role::Approver, token: String::new(), password_hash: hash },
            ],
        )
        .unwrap();
        let who = |a: &str| users.identify(&req(a)).map(|u| (u.name, u.role));
        assert_eq!(who("Bearer adm-token"), Some(("admin".into(), Role::Admin)));
        assert_eq!(who("Bearer li-token-0123456789"), Some(("li".into(), Role::Author)));
        assert_eq!(who("Bearer li-token-012345678"), None);
        assert_eq!(who(&basic("wang", "正确的马电池")), Some(("wang".into(), Role::Approver)));
        assert_eq!(who(&basic("wang", "正确的马电池")), Some(("wang".into(), Role::Approver)), "remembered");
        assert_eq!(who(&basic("wang", "wrong")), None);
        assert_eq!(who(&basic("li", "li-token-0123456789")), None, "a token is not a password");
        assert!(Role::Viewer < Role::Author && Role::Author < Role::Approver && Role::Approver < Role::Admin);
    }

    #[test]
    fn a_bad_user_list_is_refused_with_every_mistake() {
        let u = |name: &str, token: &str, hash: &str| UserConfig {
            name: name.into(),
            role: Role::Viewer,
            token: token.into(),
            password_hash: hash.into(),
        };
        let e = Users::new(
            "adm-token",
            &[u("admin", "x-token-0123456789ab", ""), u("a", "", ""), u("b", "short", ""), u("c", "", "$md5$x")],
        )
        .err()
        .unwrap();
        for part in
            ["user admin: named twice", "user a: give a token", "user b: a token is at least", "user c: password_hash"]
        {
            assert!(e.contains(part), "{part} in {e}");
        }
    }
}
