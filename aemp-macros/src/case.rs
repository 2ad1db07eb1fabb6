//! Tag spelling: splitting a Rust identifier into words and the
//! `rename_all` rules that join them again.

/// A `rename_all` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RenameRule {
    /// `snake_case` (the default for tags).
    Snake,
    /// `lowercase`: the words lowercased, joined without separator.
    Lower,
    /// `UPPERCASE`: the words uppercased, joined without separator.
    Upper,
    /// `camelCase`.
    Camel,
    /// `PascalCase`.
    Pascal,
    /// `SCREAMING_SNAKE_CASE`.
    ScreamingSnake,
    /// `kebab-case`.
    Kebab,
    /// `SCREAMING-KEBAB-CASE`.
    ScreamingKebab,
}

impl RenameRule {
    /// The rules by the names `rename_all` accepts.
    pub(crate) const ALL: &'static [(&'static str, RenameRule)] = &[
        ("snake_case", RenameRule::Snake),
        ("lowercase", RenameRule::Lower),
        ("UPPERCASE", RenameRule::Upper),
        ("camelCase", RenameRule::Camel),
        ("PascalCase", RenameRule::Pascal),
        ("SCREAMING_SNAKE_CASE", RenameRule::ScreamingSnake),
        ("kebab-case", RenameRule::Kebab),
        ("SCREAMING-KEBAB-CASE", RenameRule::ScreamingKebab),
    ];

    /// The rule called `name`, if there is one.
    pub(crate) fn from_name(name: &str) -> Option<RenameRule> {
        RenameRule::ALL.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
    }

    /// The accepted names, quoted and comma-separated, for error messages.
    pub(crate) fn names() -> String {
        RenameRule::ALL.iter().map(|(n, _)| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
    }

    /// Spells the identifier `ident` (without `r#`) by this rule.
    pub(crate) fn apply(self, ident: &str) -> String {
        let words = words(ident);
        let lower = || words.iter().map(|w| w.to_lowercase());
        let upper = || words.iter().map(|w| w.to_uppercase());
        match self {
            RenameRule::Snake => lower().collect::<Vec<_>>().join("_"),
            RenameRule::Lower => lower().collect(),
            RenameRule::Upper => upper().collect(),
            RenameRule::ScreamingSnake => upper().collect::<Vec<_>>().join("_"),
            RenameRule::Kebab => lower().collect::<Vec<_>>().join("-"),
            RenameRule::ScreamingKebab => upper().collect::<Vec<_>>().join("-"),
            RenameRule::Pascal => words.iter().map(|w| capitalise(w)).collect(),
            RenameRule::Camel => words
                .iter()
                .enumerate()
                .map(|(i, w)| if i == 0 { w.to_lowercase() } else { capitalise(w) })
                .collect(),
        }
    }
}

/// The first character uppercased, the rest as written.
fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Splits an identifier into words: at underscores, before an uppercase
/// letter that follows a lowercase letter or a digit, and before the last
/// uppercase letter of a run that a lowercase letter follows (so
/// `HTTPRequest` is `HTTP` + `Request`). Digits stay with the word before.
fn words(ident: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for part in ident.split('_').filter(|p| !p.is_empty()) {
        let chars: Vec<(usize, char)> = part.char_indices().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (at, c) = chars[i];
            let prev = chars[i - 1].1;
            let next_lower = chars.get(i + 1).is_some_and(|(_, n)| n.is_lowercase());
            let boundary = c.is_uppercase()
                && (prev.is_lowercase() || prev.is_numeric() || (prev.is_uppercase() && next_lower));
            if boundary {
                out.push(&part[start..at]);
                start = at;
            }
        }
        out.push(&part[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::RenameRule::{self, *};

    fn all(ident: &str) -> Vec<String> {
        RenameRule::ALL.iter().map(|(_, r)| r.apply(ident)).collect()
    }

    #[test]
    fn each_rule_spells_a_pascal_case_identifier() {
        assert_eq!(
            all("JoinRoom"),
            [
                "join_room",
                "joinroom",
                "JOINROOM",
                "joinRoom",
                "JoinRoom",
                "JOIN_ROOM",
                "join-room",
                "JOIN-ROOM"
            ]
        );
    }

    #[test]
    fn acronyms_digits_and_underscores_split_into_words() {
        assert_eq!(Snake.apply("HTTPRequest"), "http_request");
        assert_eq!(Snake.apply("V2Ping"), "v2_ping");
        assert_eq!(Snake.apply("Join2"), "join2");
        assert_eq!(Snake.apply("already_snake"), "already_snake");
        assert_eq!(Pascal.apply("already_snake"), "AlreadySnake");
        assert_eq!(Camel.apply("HTTPRequest"), "httpRequest");
        assert_eq!(Pascal.apply("HTTPRequest"), "HTTPRequest");
        assert_eq!(Snake.apply("A"), "a");
        assert_eq!(Snake.apply("ÄrgerNis"), "ärger_nis");
    }

    #[test]
    fn rules_are_found_by_name() {
        assert_eq!(RenameRule::from_name("kebab-case"), Some(Kebab));
        assert_eq!(RenameRule::from_name("Kebab"), None);
    }
}
