//! The configuration file and its profiles, in the format of AnyEvent::MP's
//! `aemp` tool ([AnyEvent::MP::Config](https://metacpan.org/pod/AnyEvent::MP::Config)).
//!
//! The file is 0.9's `~/.perl-anyevent-mp`: one "relaxed JSON" object
//! (`#` comments and trailing commas allowed) such as
//!
//! ```json
//! {"version":1, "secret":"...", "cert":"<PEM key+cert>", "nodeid":"...",
//!  "binds":["ip:port"], "seeds":["host:port"], "services":["Pkg::init"],
//!  "monitor_timeout":15, "network_latency":3, "connect_interval":2,
//!  "profile":{"<name>":{ same keys }}}
//! ```
//!
//! [`Config`] keeps the whole document, including keys it does not know,
//! so that reading and writing never drops anything. [`Config::profile`]
//! resolves one profile into a [`Profile`] the way a node starts from it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The port a bind derived from the node ID uses when the ID names none.
pub const DEFAULT_PORT: u16 = 4040;
/// Default `monitor_timeout` in seconds.
pub const DEFAULT_MONITOR_TIMEOUT: f64 = 15.0;
/// Default `network_latency` in seconds.
pub const DEFAULT_NETWORK_LATENCY: f64 = 3.0;
/// Default `connect_interval` in seconds.
pub const DEFAULT_CONNECT_INTERVAL: f64 = 2.0;
/// The keys holding lists of strings, edited with
/// [`Config::add_to_list`] and [`Config::remove_from_list`].
pub const LIST_KEYS: [&str; 3] = ["binds", "seeds", "services"];

/// The top-level key holding the profiles.
const PROFILE_KEY: &str = "profile";
/// Keys that [`Profile`] has a field for; everything else goes to `extra`.
const KNOWN_KEYS: [&str; 9] = [
    "nodeid",
    "binds",
    "seeds",
    "services",
    "secret",
    "cert",
    "monitor_timeout",
    "network_latency",
    "connect_interval",
];

/// The whole configuration document, unknown keys included.
///
/// Keys are kept in sorted order (serde_json's `BTreeMap`), so a saved file
/// may list them in a different order than the one read, but never loses
/// one.
#[derive(Clone, PartialEq)]
pub struct Config {
    doc: Map<String, Value>,
    origin: String,
}

/// One profile resolved for starting a node: the top level shallow-merged
/// with `profile.<name>` (profile wins), with the defaults
/// applied.
#[derive(Clone, PartialEq)]
pub struct Profile {
    /// The profile name asked for.
    pub name: String,
    /// The node ID: `nodeid`, else the profile name. `anon/` is returned as
    /// is; the caller replaces it with a random ID.
    pub nodeid: String,
    /// `ip:port` endpoints to listen on: `binds`, else the node ID read as
    /// `host:port` (port 4040 when absent, bare digits meaning
    /// `<hostname>:<digits>`), else none (a private node, e.g. `anon/`).
    pub binds: Vec<String>,
    /// `host:port` seed addresses (empty when absent).
    pub seeds: Vec<String>,
    /// Init functions (`Pkg::init`) or packages (`Pkg::`) to run at boot.
    pub services: Vec<String>,
    /// The shared secret, if any.
    pub secret: Option<String>,
    /// The PEM holding key and certificate, if any.
    pub cert: Option<String>,
    /// Seconds before a silent connection counts as dead (default 15).
    pub monitor_timeout: f64,
    /// Expected network latency in seconds (default 3).
    pub network_latency: f64,
    /// Seconds between connection attempts to seeds (default 2).
    pub connect_interval: f64,
    /// Every other merged key (aemp's own, e.g. `allow_cleartext`), except
    /// `version` and `profile`.
    pub extra: BTreeMap<String, Value>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("name", &self.name)
            .field("nodeid", &self.nodeid)
            .field("binds", &self.binds)
            .field("seeds", &self.seeds)
            .field("services", &self.services)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("cert", &self.cert.as_ref().map(|_| "<redacted>"))
            .field("monitor_timeout", &self.monitor_timeout)
            .field("network_latency", &self.network_latency)
            .field("connect_interval", &self.connect_interval)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The document holds the secret: show only its shape.
        f.debug_struct("Config")
            .field("origin", &self.origin)
            .field("keys", &self.doc.keys().collect::<Vec<_>>())
            .field("profiles", &self.profile_names())
            .finish()
    }
}

impl Default for Config {
    /// An empty configuration (`{"version":1}`) not tied to a file.
    fn default() -> Self {
        Config::empty("<default>")
    }
}

impl Config {
    fn empty(origin: &str) -> Config {
        let mut doc = Map::new();
        doc.insert("version".to_owned(), Value::from(1));
        Config { doc, origin: origin.to_owned() }
    }

    /// Reads the configuration file at `path`.
    ///
    /// A missing file is not an error: it gives the empty configuration
    /// (`{"version":1}`), as does a file holding only whitespace and
    /// comments.
    ///
    /// # Errors
    /// [`Error::Io`] (naming the file) when the file exists but cannot be
    /// read; [`Error::Config`] naming the file, line and column when it is
    /// not valid UTF-8 or not relaxed JSON, or when its top level is not an
    /// object. A broken file is never silently replaced by defaults.
    pub fn load(path: &Path) -> Result<Config> {
        let origin = path.display().to_string();
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Config::empty(&origin)),
            Err(e) => return Err(io_error("cannot read", path, e)),
        };
        if let Err(e) = std::str::from_utf8(&bytes) {
            let (line, column) = line_column(&bytes, e.valid_up_to());
            return Err(Error::Config(format!("{origin}: line {line}, column {column}: not valid UTF-8")));
        }
        Config::parse_bytes(&bytes, &origin)
    }

    /// Parses relaxed JSON text; `origin` (usually the file name) is used
    /// in error messages.
    ///
    /// Relaxed means what people write into JSON::XS relaxed files: `#`
    /// comments running to the end of the line and trailing commas in
    /// arrays and objects, both only outside strings. Text holding only
    /// whitespace and comments gives the empty configuration.
    ///
    /// # Errors
    /// [`Error::Config`] naming `origin`, line and column for malformed
    /// JSON, or when the top level is not an object.
    pub fn parse(text: &str, origin: &str) -> Result<Config> {
        Config::parse_bytes(text.as_bytes(), origin)
    }

    fn parse_bytes(text: &[u8], origin: &str) -> Result<Config> {
        let cleaned = strip_relaxed(text);
        if cleaned.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            return Ok(Config::empty(origin));
        }
        let value: Value = serde_json::from_slice(&cleaned).map_err(|e| {
            let (line, column) = (e.line(), e.column());
            let text = e.to_string();
            let suffix = format!(" at line {line} column {column}");
            let text = text.strip_suffix(&suffix).unwrap_or(&text);
            Error::Config(format!("{origin}: line {line}, column {column}: {text}"))
        })?;
        match value {
            Value::Object(doc) => Ok(Config { doc, origin: origin.to_owned() }),
            other => Err(Error::Config(format!(
                "{origin}: the top level must be a JSON object, not {}",
                type_name(&other)
            ))),
        }
    }

    /// Writes the configuration to `path` as pretty-printed JSON,
    /// atomically.
    ///
    /// The text goes to a new temporary file in the same directory (mode
    /// 0600 on Unix, since it holds the secret), which is flushed to disk.
    /// A previous file at `path` is kept as `<path>.bak` (also 0600); the
    /// temporary file is then renamed over `path`, so `path` always holds
    /// either the old or the new configuration, never a partial one. The
    /// backup is made by hard link (by copy where links are not possible),
    /// so `path` never disappears, even briefly. Missing directories are
    /// created (0700 on Unix).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file that could not be written; the
    /// temporary file is removed and `path` is left as it was.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = self.to_pretty();
        text.push('\n');
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let Some(file_name) = path.file_name() else {
            return Err(Error::Config(format!("{}: not a file name", path.display())));
        };
        create_private_dir(&dir)?;
        let tmp = write_temp(&dir, file_name, text.as_bytes())?;
        let result = backup(path)
            .and_then(|()| fs::rename(&tmp, path).map_err(|e| io_error("cannot replace", path, e)));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        sync_dir(&dir);
        Ok(())
    }

    /// The configuration file used when none is named: `$AEMP_CONFIG` if
    /// set, else `$XDG_CONFIG_HOME/aemp/config.json`, else
    /// `$HOME/.config/aemp/config.json` (empty variables and a relative
    /// `XDG_CONFIG_HOME` are ignored).
    pub fn default_path() -> PathBuf {
        default_path_from(|name| std::env::var_os(name))
    }

    /// Where this configuration came from (the file name), as used in
    /// error messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The whole document, including `profile` and unknown keys.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.doc
    }

    /// The document as pretty-printed JSON (no trailing newline); what
    /// `aemp showconfig` prints without a profile.
    pub fn to_pretty(&self) -> String {
        format!("{:#}", Value::Object(self.doc.clone()))
    }

    /// The merged view of profile `name` for `aemp showconfig <name>`:
    /// every top-level key except `profile`, overridden by the keys of
    /// `profile.<name>`. No defaults are filled in. A missing profile, or
    /// one that is not an object, contributes nothing (use
    /// [`Config::profile`] to have it reported).
    pub fn merged_json(&self, name: &str) -> Value {
        let mut out = self.top_level_keys();
        if let Ok(Some(profile)) = self.profile_map(name) {
            merge_into(&mut out, profile);
        }
        Value::Object(out)
    }

    /// Resolves profile `name` as a node starting from it does:
    /// every top-level key shallow-merged with `profile.<name>` (profile
    /// wins; a `null` counts as absent), then the defaults described on
    /// [`Profile`]'s fields. A profile that does not exist is not an error:
    /// the top level alone is used.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file, the key and the profile when a
    /// value has the wrong type (e.g. `binds` is a string, a timeout is not
    /// a non-negative number), when `profile` or `profile.<name>` is not an
    /// object, or when the node ID would be empty.
    pub fn profile(&self, name: &str) -> Result<Profile> {
        let own = self.profile_map(name)?;
        let mut merged = self.top_level_keys();
        if let Some(own) = own {
            merge_into(&mut merged, own);
        }
        merged.retain(|_, v| !v.is_null());
        let bad = |key: &str, problem: &str| {
            let place = if own.is_some_and(|p| p.contains_key(key)) {
                format!("in profile {name:?}")
            } else {
                format!("at the top level (used by profile {name:?})")
            };
            Error::Config(format!("{}: key {key:?} {place} {problem}", self.origin))
        };
        for key in KNOWN_KEYS {
            if let Some(value) = merged.get(key) {
                check_known(key, value).map_err(|problem| bad(key, &problem))?;
            }
        }
        let string = |key: &str| merged.get(key).and_then(Value::as_str).map(str::to_owned);
        let list = |key: &str| {
            merged
                .get(key)
                .and_then(Value::as_array)
                .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect::<Vec<_>>())
        };
        let number = |key: &str, default: f64| merged.get(key).and_then(Value::as_f64).unwrap_or(default);

        let nodeid = string("nodeid").unwrap_or_else(|| name.to_owned());
        if nodeid.is_empty() {
            return Err(Error::Config(format!("{}: profile {name:?} gives an empty node ID", self.origin)));
        }
        let binds =
            list("binds").unwrap_or_else(|| bind_from_nodeid(&nodeid, hostname).into_iter().collect());
        let profile = Profile {
            name: name.to_owned(),
            binds,
            seeds: list("seeds").unwrap_or_default(),
            services: list("services").unwrap_or_default(),
            secret: string("secret"),
            cert: string("cert"),
            monitor_timeout: number("monitor_timeout", DEFAULT_MONITOR_TIMEOUT),
            network_latency: number("network_latency", DEFAULT_NETWORK_LATENCY),
            connect_interval: number("connect_interval", DEFAULT_CONNECT_INTERVAL),
            extra: merged
                .iter()
                .filter(|(k, _)| !KNOWN_KEYS.contains(&k.as_str()) && k.as_str() != "version")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            nodeid,
        };
        Ok(profile)
    }

    /// The names of all profiles, sorted (none when `profile` is missing or
    /// not an object).
    pub fn profile_names(&self) -> Vec<String> {
        match self.doc.get(PROFILE_KEY) {
            Some(Value::Object(profiles)) => profiles.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Whether `profile.<name>` exists.
    pub fn has_profile(&self, name: &str) -> bool {
        matches!(self.profile_map(name), Ok(Some(_)))
    }

    /// Removes `profile.<name>`; returns whether it existed.
    ///
    /// # Errors
    /// [`Error::Config`] when `profile` is not an object.
    pub fn delete_profile(&mut self, name: &str) -> Result<bool> {
        match self.doc.get_mut(PROFILE_KEY) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Object(profiles)) => Ok(profiles.remove(name).is_some()),
            Some(other) => Err(Error::Config(format!(
                "{}: key \"profile\" must be an object, not {}",
                self.origin,
                type_name(other)
            ))),
        }
    }

    /// The value of `key` at the top level (`profile` = `None`) or in
    /// `profile.<name>` (not merged; see [`Config::merged_json`]).
    ///
    /// # Errors
    /// [`Error::Config`] when `profile` or `profile.<name>` is not an
    /// object.
    pub fn get(&self, profile: Option<&str>, key: &str) -> Result<Option<&Value>> {
        let map = match profile {
            None => Some(&self.doc),
            Some(name) => self.profile_map(name)?,
        };
        Ok(map.and_then(|m| m.get(key)))
    }

    /// Sets `key` at the top level or in `profile.<name>` (created when
    /// missing). Known keys are checked: `nodeid` must be a non-empty
    /// string, `secret` and `cert` strings, `binds`/`seeds`/`services`
    /// lists of strings, the timeouts non-negative numbers; `null` is
    /// accepted for all. Unknown keys take any value.
    ///
    /// # Errors
    /// [`Error::Config`] for a wrongly typed known key, for the key
    /// `profile` (use the profile methods), or when `profile` or
    /// `profile.<name>` is not an object.
    pub fn set(&mut self, profile: Option<&str>, key: &str, value: Value) -> Result<()> {
        if key == PROFILE_KEY {
            return Err(Error::Config(format!(
                "{}: {}: key \"profile\" cannot be set directly",
                self.origin,
                scope_name(profile)
            )));
        }
        check_known(key, &value).map_err(|problem| {
            Error::Config(format!("{}: {}: key {key:?} {problem}", self.origin, scope_name(profile)))
        })?;
        let map = self.scope_mut(profile, true)?;
        map.insert(key.to_owned(), value);
        Ok(())
    }

    /// Removes `key` from the top level or from `profile.<name>`; returns
    /// the old value. A missing profile is left missing. Removing a list
    /// key brings back its default (e.g. binds from the node ID), which is
    /// not the same as an empty list (none).
    ///
    /// # Errors
    /// [`Error::Config`] when `profile` or `profile.<name>` is not an
    /// object.
    pub fn delete(&mut self, profile: Option<&str>, key: &str) -> Result<Option<Value>> {
        if profile.is_some_and(|name| !self.has_profile(name)) {
            // Still report a wrongly typed `profile`.
            self.get(profile, key)?;
            return Ok(None);
        }
        Ok(self.scope_mut(profile, false)?.remove(key))
    }

    /// Appends `item` to the list `key` (e.g. `binds`) at the top level or
    /// in `profile.<name>`, creating the list and the profile as needed.
    /// Returns `false` (and changes nothing) when `item` is already there.
    ///
    /// # Errors
    /// [`Error::Config`] when the existing value is not a list of strings,
    /// or when `profile` or `profile.<name>` is not an object.
    pub fn add_to_list(&mut self, profile: Option<&str>, key: &str, item: &str) -> Result<bool> {
        self.check_list(profile, key)?;
        let slot = self.scope_mut(profile, true)?.entry(key.to_owned()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = Value::Array(Vec::new());
        }
        let Value::Array(items) = slot else {
            return Ok(false); // excluded by check_list
        };
        if items.iter().any(|v| v.as_str() == Some(item)) {
            return Ok(false);
        }
        items.push(Value::String(item.to_owned()));
        Ok(true)
    }

    /// Removes every `item` from the list `key` at the top level or in
    /// `profile.<name>`; returns whether anything was removed. The list is
    /// kept even when it becomes empty (an empty `binds` means no binds).
    ///
    /// # Errors
    /// [`Error::Config`] when the existing value is not a list of strings,
    /// or when `profile` or `profile.<name>` is not an object.
    pub fn remove_from_list(&mut self, profile: Option<&str>, key: &str, item: &str) -> Result<bool> {
        self.check_list(profile, key)?;
        if self.get(profile, key)?.is_none() {
            return Ok(false);
        }
        match self.scope_mut(profile, false)?.get_mut(key) {
            Some(Value::Array(items)) => {
                let before = items.len();
                items.retain(|v| v.as_str() != Some(item));
                Ok(items.len() != before)
            }
            _ => Ok(false),
        }
    }

    fn check_list(&self, profile: Option<&str>, key: &str) -> Result<()> {
        match self.get(profile, key)? {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
            Some(other) => Err(Error::Config(format!(
                "{}: {}: key {key:?} must be a list of strings, not {}",
                self.origin,
                scope_name(profile),
                type_name(other)
            ))),
        }
    }

    /// Every top-level key except `profile`.
    fn top_level_keys(&self) -> Map<String, Value> {
        self.doc
            .iter()
            .filter(|(k, _)| k.as_str() != PROFILE_KEY)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// `profile.<name>`: `None` when missing (or `null`).
    fn profile_map(&self, name: &str) -> Result<Option<&Map<String, Value>>> {
        let profiles = match self.doc.get(PROFILE_KEY) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(profiles)) => profiles,
            Some(other) => {
                return Err(Error::Config(format!(
                    "{}: key \"profile\" must be an object, not {}",
                    self.origin,
                    type_name(other)
                )))
            }
        };
        match profiles.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(profile)) => Ok(Some(profile)),
            Some(other) => Err(Error::Config(format!(
                "{}: profile {name:?} must be an object, not {}",
                self.origin,
                type_name(other)
            ))),
        }
    }

    /// The map to edit: the top level, or `profile.<name>`, which is
    /// created when `create` is set (and is otherwise known to exist).
    fn scope_mut(&mut self, profile: Option<&str>, create: bool) -> Result<&mut Map<String, Value>> {
        let Some(name) = profile else {
            return Ok(&mut self.doc);
        };
        // Type errors first, with an immutable borrow.
        self.profile_map(name)?;
        let profiles = self.doc.entry(PROFILE_KEY.to_owned()).or_insert(Value::Null);
        if profiles.is_null() {
            *profiles = Value::Object(Map::new());
        }
        let Value::Object(profiles) = profiles else {
            return Err(Error::Config(format!("{}: key \"profile\" must be an object", self.origin)));
        };
        let slot = profiles.entry(name.to_owned()).or_insert(Value::Null);
        if slot.is_null() {
            if !create {
                return Err(Error::Config(format!("{}: there is no profile {name:?}", self.origin)));
            }
            *slot = Value::Object(Map::new());
        }
        match slot {
            Value::Object(map) => Ok(map),
            _ => Err(Error::Config(format!("{}: profile {name:?} must be an object", self.origin))),
        }
    }
}

/// The host name (`uname -n`): `/proc/sys/kernel/hostname`, else the
/// output of the `uname -n` command, else `localhost`. It is the default
/// profile name.
pub fn hostname() -> String {
    if let Ok(text) = fs::read_to_string("/proc/sys/kernel/hostname") {
        let name = text.trim();
        if !name.is_empty() {
            return name.to_owned();
        }
    }
    if let Ok(out) = std::process::Command::new("uname").arg("-n").output() {
        if out.status.success() {
            if let Ok(text) = String::from_utf8(out.stdout) {
                let name = text.trim();
                if !name.is_empty() {
                    return name.to_owned();
                }
            }
        }
    }
    "localhost".to_owned()
}

/// Shallow merge: every key of `over` except `profile` replaces `into`'s.
fn merge_into(into: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (key, value) in over {
        if key != PROFILE_KEY {
            into.insert(key.clone(), value.clone());
        }
    }
}

/// Checks the type of a known key's value; `Err` holds what is wrong.
fn check_known(key: &str, value: &Value) -> std::result::Result<(), String> {
    if value.is_null() {
        return Ok(());
    }
    let ok = match key {
        "nodeid" => value.as_str().is_some_and(|s| !s.is_empty()),
        "secret" | "cert" => value.is_string(),
        "binds" | "seeds" | "services" => {
            value.as_array().is_some_and(|items| items.iter().all(Value::is_string))
        }
        "monitor_timeout" | "network_latency" | "connect_interval" => {
            value.as_f64().is_some_and(|n| n.is_finite() && n >= 0.0)
        }
        _ => true,
    };
    if ok {
        return Ok(());
    }
    let wanted = match key {
        "nodeid" => "a non-empty string",
        "secret" | "cert" => "a string",
        "binds" | "seeds" | "services" => "a list of strings",
        _ => "a non-negative number",
    };
    Err(format!("must be {wanted}, not {}", describe(value)))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Like [`type_name`], but shows numbers and short strings (never a
/// secret-sized one).
fn describe(value: &Value) -> String {
    match value {
        Value::Number(n) => format!("{n}"),
        Value::String(s) if s.is_empty() => "an empty string".to_owned(),
        Value::Array(items) if !items.iter().all(Value::is_string) => {
            "a list holding a non-string".to_owned()
        }
        other => type_name(other).to_owned(),
    }
}

fn scope_name(profile: Option<&str>) -> String {
    match profile {
        None => "top level".to_owned(),
        Some(name) => format!("profile {name:?}"),
    }
}

/// The relaxed-JSON pre-pass: blanks `#` comments (to the end of the line)
/// and trailing commas before `]` or `}`, both outside strings, by
/// replacing each removed byte with a space so that serde_json's lines and
/// columns still point into the original text.
fn strip_relaxed(text: &[u8]) -> Vec<u8> {
    let mut out = text.to_vec();
    let mut in_string = false;
    let mut escaped = false;
    let mut in_comment = false;
    // A comma that is (so far) the last significant byte outside strings.
    let mut pending_comma: Option<usize> = None;
    for i in 0..out.len() {
        let byte = out[i];
        if in_comment {
            if byte == b'\n' {
                in_comment = false;
            } else {
                out[i] = b' ';
            }
            continue;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'#' => {
                in_comment = true;
                out[i] = b' ';
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b',' => pending_comma = Some(i),
            b']' | b'}' => {
                if let Some(comma) = pending_comma.take() {
                    out[comma] = b' ';
                }
            }
            b'"' => {
                in_string = true;
                pending_comma = None;
            }
            _ => pending_comma = None,
        }
    }
    out
}

/// 1-based line and column (in bytes) of byte offset `at`.
fn line_column(text: &[u8], at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
    (line, column)
}

/// The bind a node ID gives when read as `host:port` (port 4040 when
/// absent; bare digits are a port on `host()`), or `None` when it cannot
/// be read so (e.g. `anon/`).
fn bind_from_nodeid(nodeid: &str, host: impl FnOnce() -> String) -> Option<String> {
    if !nodeid.is_empty() && nodeid.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("{}:{}", host(), parse_port(nodeid)?));
    }
    if let Some(rest) = nodeid.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        addr.parse::<Ipv6Addr>().ok()?;
        let port = match after {
            "" => DEFAULT_PORT,
            _ => parse_port(after.strip_prefix(':')?)?,
        };
        return Some(format!("[{addr}]:{port}"));
    }
    let (host, port) = match nodeid.split_once(':') {
        None => (nodeid, DEFAULT_PORT),
        Some((host, port)) if !port.contains(':') => (host, parse_port(port)?),
        Some(_) => {
            // Two or more colons: a bare IPv6 address.
            nodeid.parse::<Ipv6Addr>().ok()?;
            return Some(format!("[{nodeid}]:{DEFAULT_PORT}"));
        }
    };
    let valid_host = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    valid_host.then(|| format!("{host}:{port}"))
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn default_path_from(env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(path) = var("AEMP_CONFIG") {
        return PathBuf::from(path);
    }
    let base = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".config")))
        .unwrap_or_else(|| PathBuf::from(".config"));
    base.join("aemp").join("config.json")
}

fn io_error(what: &str, path: &Path, e: io::Error) -> Error {
    Error::Io(io::Error::new(e.kind(), format!("{what} {}: {e}", path.display())))
}

fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| io_error("cannot create directory", dir, e))
}

/// Writes `bytes` to a new private file next to the target and flushes it
/// to disk; returns its path.
fn write_temp(dir: &Path, file_name: &std::ffi::OsStr, bytes: &[u8]) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut attempts = 0;
    let (tmp, mut file) = loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut name = OsString::from(".");
        name.push(file_name);
        name.push(format!(".tmp-{}-{n}", std::process::id()));
        let tmp = dir.join(name);
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&tmp) {
            Ok(file) => break (tmp, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                attempts += 1;
            }
            Err(e) => return Err(io_error("cannot create", &tmp, e)),
        }
    };
    let written = (|| {
        set_private(&file)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        drop(file);
        let _ = fs::remove_file(&tmp);
        return Err(io_error("cannot write", &tmp, e));
    }
    Ok(tmp)
}

#[cfg(unix)]
fn set_private(file: &fs::File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private(_file: &fs::File) -> io::Result<()> {
    Ok(())
}

/// Keeps the current file at `path` (if any) as `<path>.bak`, mode 0600.
fn backup(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error("cannot inspect", path, e)),
    };
    let mut bak = path.as_os_str().to_owned();
    bak.push(".bak");
    let bak = PathBuf::from(bak);
    match fs::remove_file(&bak) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("cannot remove old backup", &bak, e)),
    }
    // A hard link keeps `path` in place until the rename replaces it; a
    // symlink or a file system without links gets a copy of the contents.
    let linked = meta.file_type().is_file() && fs::hard_link(path, &bak).is_ok();
    if !linked {
        fs::copy(path, &bak).map_err(|e| io_error("cannot back up", path, e))?;
    }
    let file = fs::File::open(&bak).map_err(|e| io_error("cannot open", &bak, e))?;
    set_private(&file).map_err(|e| io_error("cannot restrict", &bak, e))
}

/// Flushes the directory entry changes (best effort; Unix only).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(text: &str) -> Config {
        Config::parse(text, "test.json").unwrap()
    }

    fn config_msg(err: Error) -> String {
        match err {
            Error::Config(msg) => msg,
            other => panic!("expected Error::Config, got {other:?}"),
        }
    }

    #[test]
    fn top_level_only() {
        let c = cfg(r#"{"secret":"s","binds":["1.2.3.4:5"],"seeds":["a:1"],
            "services":["X::init"],"monitor_timeout":7}"#);
        let p = c.profile("p").unwrap();
        assert_eq!(p.name, "p");
        assert_eq!(p.nodeid, "p");
        assert_eq!(p.binds, ["1.2.3.4:5"]);
        assert_eq!(p.seeds, ["a:1"]);
        assert_eq!(p.services, ["X::init"]);
        assert_eq!(p.secret.as_deref(), Some("s"));
        assert_eq!(p.cert, None);
        assert_eq!(p.monitor_timeout, 7.0);
        assert_eq!(p.network_latency, DEFAULT_NETWORK_LATENCY);
        assert_eq!(p.connect_interval, DEFAULT_CONNECT_INTERVAL);
    }

    #[test]
    fn profile_only() {
        let c = cfg(r#"{"profile":{"p":{"nodeid":"n:1","seeds":["s:2"],"secret":"x",
            "network_latency":0.5,"cert":"PEM"}}}"#);
        let p = c.profile("p").unwrap();
        assert_eq!(p.nodeid, "n:1");
        assert_eq!(p.binds, ["n:1"]);
        assert_eq!(p.seeds, ["s:2"]);
        assert_eq!(p.secret.as_deref(), Some("x"));
        assert_eq!(p.cert.as_deref(), Some("PEM"));
        assert_eq!(p.network_latency, 0.5);
        assert_eq!(p.monitor_timeout, DEFAULT_MONITOR_TIMEOUT);
        // Another profile sees nothing of it.
        let q = c.profile("q").unwrap();
        assert_eq!(q.nodeid, "q");
        assert!(q.seeds.is_empty());
        assert_eq!(q.secret, None);
    }

    #[test]
    fn profile_overrides_top_level() {
        let c = cfg(r#"{"secret":"top","seeds":["t:1"],"binds":["t:2"],"connect_interval":9,
            "allow_cleartext":false,"version":1,
            "profile":{"p":{"secret":"own","binds":[],"allow_cleartext":true,
                            "max_message":1000,"seeds":null}}}"#);
        let p = c.profile("p").unwrap();
        assert_eq!(p.secret.as_deref(), Some("own"));
        assert!(p.binds.is_empty(), "an explicit empty list means no binds");
        assert!(p.seeds.is_empty(), "null counts as absent");
        assert_eq!(p.connect_interval, 9.0);
        assert_eq!(p.extra.get("allow_cleartext"), Some(&json!(true)));
        assert_eq!(p.extra.get("max_message"), Some(&json!(1000)));
        assert!(!p.extra.contains_key("version"));
        assert!(!p.extra.contains_key("profile"));
        assert!(!p.extra.contains_key("secret"));

        let merged = c.merged_json("p");
        assert_eq!(merged["secret"], json!("own"));
        assert_eq!(merged["seeds"], Value::Null);
        assert_eq!(merged["connect_interval"], json!(9));
        assert!(merged.get("profile").is_none());
        assert_eq!(c.merged_json("nope")["secret"], json!("top"));
    }

    #[test]
    fn nodeid_defaults_to_profile_name() {
        let c = cfg(r#"{"profile":{"a":{"nodeid":"real"}}}"#);
        assert_eq!(c.profile("a").unwrap().nodeid, "real");
        assert_eq!(c.profile("a").unwrap().binds, ["real:4040"]);
        assert_eq!(c.profile("b").unwrap().nodeid, "b");
        let c = cfg(r#"{"nodeid":"top"}"#);
        assert_eq!(c.profile("x").unwrap().nodeid, "top");
        assert!(c.profile("").is_ok());
        let err = config_msg(Config::default().profile("").unwrap_err());
        assert!(err.contains("empty node ID"), "{err}");
    }

    #[test]
    fn binds_from_nodeid() {
        let c = Config::default();
        let binds = |name: &str| c.profile(name).unwrap().binds;
        assert_eq!(binds("host:4044"), ["host:4044"]);
        assert_eq!(binds("host.example.org"), ["host.example.org:4040"]);
        assert_eq!(binds("10.0.0.1:1"), ["10.0.0.1:1"]);
        assert_eq!(binds("4044"), [format!("{}:4044", hostname())]);
        assert_eq!(binds("[::1]:5"), ["[::1]:5"]);
        assert_eq!(binds("[::1]"), ["[::1]:4040"]);
        assert_eq!(binds("fe80::1"), ["[fe80::1]:4040"]);
        assert!(binds("anon/").is_empty());
        assert!(binds("a/b:1").is_empty());
        assert!(binds("host:port").is_empty());
        assert!(binds("host:99999").is_empty());
        assert!(binds(":4040").is_empty());
        assert!(binds("[x]:1").is_empty());
        assert_eq!(bind_from_nodeid("77", || "box".into()).as_deref(), Some("box:77"));
        let anon = c.profile("anon/").unwrap();
        assert_eq!(anon.nodeid, "anon/");
        assert!(anon.binds.is_empty());
    }

    #[test]
    fn wrong_types_name_key_and_profile() {
        let c = cfg(r#"{"profile":{"p":{"binds":"1.2.3.4:5"}}}"#);
        let err = config_msg(c.profile("p").unwrap_err());
        assert!(err.contains("\"binds\"") && err.contains("\"p\""), "{err}");
        assert!(err.contains("test.json"), "{err}");

        let c = cfg(r#"{"monitor_timeout":"x"}"#);
        let err = config_msg(c.profile("q").unwrap_err());
        assert!(err.contains("\"monitor_timeout\"") && err.contains("\"q\""), "{err}");
        assert!(err.contains("top level"), "{err}");

        for bad in [
            r#"{"seeds":[1]}"#,
            r#"{"secret":5}"#,
            r#"{"nodeid":""}"#,
            r#"{"network_latency":-1}"#,
            r#"{"profile":[]}"#,
            r#"{"profile":{"p":"x"}}"#,
        ] {
            assert!(matches!(cfg(bad).profile("p"), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn relaxed_json() {
        let text = r##"# leading comment
{
  "secret": "a#b,]c", # trailing comment with "quotes", and ]
  "seeds": ["x:1", "y:2",],   # trailing comma
  "esc": "q\"#,}",
  "back": "\\",
  "nested": {"a": [1, 2,], "b": {},},
}
# done"##;
        let c = cfg(text);
        assert_eq!(c.as_map()["secret"], json!("a#b,]c"));
        assert_eq!(c.as_map()["seeds"], json!(["x:1", "y:2"]));
        assert_eq!(c.as_map()["esc"], json!("q\"#,}"));
        assert_eq!(c.as_map()["back"], json!("\\"));
        assert_eq!(c.as_map()["nested"], json!({"a": [1, 2], "b": {}}));
        // Only whitespace and comments: the empty configuration.
        assert_eq!(cfg("  # nothing\n"), Config::empty("test.json"));
        // A doubled comma is still an error.
        assert!(Config::parse(r#"{"a":[1,,]}"#, "t").is_err());
        assert!(Config::parse(r#"[1]"#, "t").is_err());
    }

    #[test]
    fn parse_error_positions_survive_the_pre_pass() {
        let text = "{ # a comment, with ] and }\n  \"a\": [1,],\n  \"b\": ?\n}";
        let err = config_msg(Config::parse(text, "conf.json").unwrap_err());
        assert!(err.starts_with("conf.json: line 3, column 8: "), "{err}");
        let e = serde_json::from_str::<Value>("{\n  \"a\": 1,\n  \"b\": ?\n}").unwrap_err();
        assert_eq!((e.line(), e.column()), (3, 8));
    }

    #[test]
    fn malformed_file_is_an_error_with_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, "{\n  \"secret\": \"s\"\n  \"seeds\": []\n}\n").unwrap();
        let err = config_msg(Config::load(&path).unwrap_err());
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("line 3, column 3"), "{err}");
        // Invalid UTF-8 is reported the same way.
        fs::write(&path, b"{\"a\":\n \"\xff\"}").unwrap();
        let err = config_msg(Config::load(&path).unwrap_err());
        assert!(err.contains("line 2, column 3") && err.contains("UTF-8"), "{err}");
        // A directory is an I/O error naming it.
        match Config::load(dir.path()) {
            Err(Error::Io(e)) => assert!(e.to_string().contains(&dir.path().display().to_string())),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/config.json");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.as_map(), Config::default().as_map());
        assert_eq!(c.origin(), path.display().to_string());
        assert!(c.profile_names().is_empty());
        let p = c.profile("box").unwrap();
        assert_eq!(p.binds, ["box:4040"]);
        assert_eq!(p.secret, None);
    }

    #[test]
    fn unknown_keys_survive_load_and_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(
            &path,
            r#"{"version":1,"allow_tls_anon":true,"send_queue_limit":{"x":[1,2.5,null]},
               "profile":{"p":{"max_message":123,"weird":"w"}},}"#,
        )
        .unwrap();
        let mut c = Config::load(&path).unwrap();
        c.set(Some("p"), "seeds", json!(["s:1"])).unwrap();
        c.save(&path).unwrap();
        let back = Config::load(&path).unwrap();
        assert_eq!(back.as_map()["allow_tls_anon"], json!(true));
        assert_eq!(back.as_map()["send_queue_limit"], json!({"x":[1,2.5,null]}));
        assert_eq!(back.get(Some("p"), "max_message").unwrap(), Some(&json!(123)));
        assert_eq!(back.get(Some("p"), "weird").unwrap(), Some(&json!("w")));
        assert_eq!(back.get(Some("p"), "seeds").unwrap(), Some(&json!(["s:1"])));
        assert_eq!(back.as_map(), c.as_map());
        assert_eq!(back.to_pretty(), c.to_pretty());
    }

    #[test]
    fn save_is_atomic_and_keeps_bak() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        let bak = dir.path().join("sub/config.json.bak");
        let mut c = Config::default();
        c.set(None, "secret", json!("one")).unwrap();
        c.save(&path).unwrap();
        assert!(!bak.exists(), "nothing to back up the first time");
        c.set(None, "secret", json!("two")).unwrap();
        c.save(&path).unwrap();
        assert_eq!(Config::load(&path).unwrap().as_map()["secret"], json!("two"));
        assert_eq!(Config::load(&bak).unwrap().as_map()["secret"], json!("one"));
        c.set(None, "secret", json!("three")).unwrap();
        c.save(&path).unwrap();
        assert_eq!(Config::load(&bak).unwrap().as_map()["secret"], json!("two"));
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n") && text.contains("\n  \"secret\""), "{text}");
        let mut names: Vec<_> = fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["config.json", "config.json.bak"], "no temp files left");

        // A failed save leaves the target alone and no temp file behind.
        let blocked = dir.path().join("blocked");
        fs::create_dir_all(blocked.join("inside")).unwrap();
        assert!(matches!(c.save(&blocked), Err(Error::Io(_))));
        assert!(blocked.join("inside").is_dir());
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[cfg(unix)]
    #[test]
    fn saved_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, "{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        Config::default().save(&path).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("config.json.bak")), 0o600);
        let fresh = dir.path().join("new/config.json");
        Config::default().save(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o600);
        assert_eq!(mode(&dir.path().join("new")), 0o700);
    }

    #[test]
    fn real_0_9_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".perl-anyevent-mp");
        fs::write(&path, r#"{"version":1,"secret":"s","profile":{"seed":{"binds":["127.0.0.1:4040"]}}}"#)
            .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.profile_names(), ["seed"]);
        let seed = c.profile("seed").unwrap();
        assert_eq!(seed.nodeid, "seed");
        assert_eq!(seed.binds, ["127.0.0.1:4040"]);
        assert_eq!(seed.secret.as_deref(), Some("s"));
        assert!(seed.extra.is_empty());
        let other = c.profile("client").unwrap();
        assert_eq!(other.secret.as_deref(), Some("s"));
        assert_eq!(other.binds, ["client:4040"]);
    }

    #[test]
    fn editing_keys_lists_and_profiles() {
        let mut c = Config::default();
        c.set(None, "secret", json!("s")).unwrap();
        c.set(Some("p"), "nodeid", json!("n")).unwrap();
        assert_eq!(c.profile_names(), ["p"]);
        assert!(c.has_profile("p"));
        assert_eq!(c.get(Some("p"), "nodeid").unwrap(), Some(&json!("n")));
        assert_eq!(c.get(None, "nodeid").unwrap(), None);
        assert!(c.set(None, "binds", json!("x")).is_err());
        assert!(c.set(None, "monitor_timeout", json!("x")).is_err());
        assert!(c.set(None, "profile", json!({})).is_err());
        c.set(None, "allow_cleartext", json!(true)).unwrap();

        assert!(c.add_to_list(Some("p"), "binds", "a:1").unwrap());
        assert!(c.add_to_list(Some("p"), "binds", "b:2").unwrap());
        assert!(!c.add_to_list(Some("p"), "binds", "a:1").unwrap());
        assert_eq!(c.profile("p").unwrap().binds, ["a:1", "b:2"]);
        assert!(c.remove_from_list(Some("p"), "binds", "a:1").unwrap());
        assert!(!c.remove_from_list(Some("p"), "binds", "a:1").unwrap());
        assert!(c.remove_from_list(Some("p"), "binds", "b:2").unwrap());
        assert!(c.profile("p").unwrap().binds.is_empty(), "empty list kept");
        assert_eq!(c.delete(Some("p"), "binds").unwrap(), Some(json!([])));
        assert_eq!(c.profile("p").unwrap().binds, ["n:4040"]);

        assert!(c.add_to_list(None, "seeds", "s:1").unwrap());
        assert!(!c.remove_from_list(Some("nope"), "seeds", "s:1").unwrap());
        assert!(!c.has_profile("nope"), "removing does not create a profile");
        assert_eq!(c.delete(Some("nope"), "seeds").unwrap(), None);
        assert!(!c.has_profile("nope"));
        assert_eq!(c.delete(None, "secret").unwrap(), Some(json!("s")));
        assert_eq!(c.delete(None, "secret").unwrap(), None);

        assert!(c.set(None, "services", json!("X::")).is_err());
        assert!(!c.as_map().contains_key("services"), "a rejected value is not stored");
        let mut bad = cfg(r#"{"services":"X::"}"#);
        assert!(bad.add_to_list(None, "services", "Y::").is_err());
        assert!(bad.remove_from_list(None, "services", "Y::").is_err());

        assert!(c.delete_profile("p").unwrap());
        assert!(!c.delete_profile("p").unwrap());
        assert!(c.profile_names().is_empty());
        let mut broken = cfg(r#"{"profile":"x"}"#);
        assert!(broken.delete_profile("p").is_err());
        assert!(broken.set(Some("p"), "a", json!(1)).is_err());
        assert!(broken.get(Some("p"), "a").is_err());
    }

    #[test]
    fn default_path_rules() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
        };
        let all: &'static [(&str, &str)] =
            &[("AEMP_CONFIG", "/x/my.json"), ("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/home/u")];
        assert_eq!(default_path_from(env(all)), PathBuf::from("/x/my.json"));
        assert_eq!(
            default_path_from(env(&[("AEMP_CONFIG", ""), ("XDG_CONFIG_HOME", "/xdg"), ("HOME", "/h")])),
            PathBuf::from("/xdg/aemp/config.json")
        );
        assert_eq!(
            default_path_from(env(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")])),
            PathBuf::from("/h/.config/aemp/config.json")
        );
        assert_eq!(default_path_from(env(&[])), PathBuf::from(".config/aemp/config.json"));
        assert!(
            Config::default_path().ends_with("aemp/config.json") || std::env::var_os("AEMP_CONFIG").is_some()
        );
    }

    #[test]
    fn hostname_is_not_empty() {
        let name = hostname();
        assert!(!name.is_empty() && !name.contains('\n'));
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = cfg(r#"{"secret":"hunter2","profile":{"p":{}}}"#);
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{:?}", c.profile("p").unwrap()).contains("hunter2"));
    }
}
