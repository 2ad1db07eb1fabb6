//! Parsing `#[aemp(...)]` attributes, and the error collector that lets
//! every mistake be reported at once.

use std::fmt;

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};
use syn::{Attribute, LitStr, Path, Token};

use crate::case::RenameRule;

/// Collects errors so that all of them are reported together.
#[derive(Default)]
pub(crate) struct Errors(Vec<syn::Error>);

impl Errors {
    /// Records an error spanning `tokens`.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl fmt::Display) {
        self.0.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error produced by syn.
    pub(crate) fn push(&mut self, error: syn::Error) {
        self.0.push(error);
    }

    /// `Ok` when nothing was recorded, else all errors combined into one.
    pub(crate) fn finish(self) -> syn::Result<()> {
        let mut it = self.0.into_iter();
        match it.next() {
            None => Ok(()),
            Some(mut first) => {
                first.extend(it);
                Err(first)
            }
        }
    }
}

/// Where an attribute stands; decides which keys it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Enum,
    Struct,
    Variant,
}

impl Place {
    fn keys(self) -> &'static [&'static str] {
        match self {
            Place::Enum => &["rename_all", "crate"],
            Place::Struct => &["tag", "rename", "crate"],
            Place::Variant => &["rename"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Place::Enum => "an enum",
            Place::Struct => "a struct",
            Place::Variant => "a variant",
        }
    }
}

/// A `key = "value"` attribute, kept with its tokens for error spans.
pub(crate) struct Setting<T> {
    /// The parsed value.
    pub(crate) value: T,
    /// The key.
    pub(crate) key: Path,
    /// The string literal.
    pub(crate) lit: LitStr,
}

impl<T> Setting<T> {
    /// The tokens `key = "value"`, for errors about the whole setting.
    pub(crate) fn tokens(&self) -> TokenStream {
        let (key, lit) = (&self.key, &self.lit);
        quote!(#key = #lit)
    }
}

/// The attributes of the enum or struct that derives.
#[derive(Default)]
pub(crate) struct Container {
    /// `rename_all = "..."` (enums).
    pub(crate) rename_all: Option<Setting<RenameRule>>,
    /// `crate = "..."`: the path of the aemp crate.
    pub(crate) krate: Option<Setting<Path>>,
    /// `tag = "..."` (structs).
    pub(crate) tag: Option<Setting<String>>,
    /// `rename = "..."` (structs, same as `tag`).
    pub(crate) rename: Option<Setting<String>>,
}

/// The attributes of an enum variant.
#[derive(Default)]
pub(crate) struct Variant {
    /// `rename = "..."`.
    pub(crate) rename: Option<Setting<String>>,
}

/// One `key`, `key = value` or `key(...)` item of `#[aemp(...)]`.
struct Item {
    key: Path,
    value: Option<LitStr>,
}

/// Reads the items of every `#[aemp(...)]` among `attrs`, recording syntax
/// errors and going on with the next item where it can.
fn items(attrs: &[Attribute], errors: &mut Errors) -> Vec<Item> {
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("aemp")) {
        let list = match &attr.meta {
            syn::Meta::List(list) => list,
            other => {
                errors.spanned(other, "expected `#[aemp(...)]`");
                continue;
            }
        };
        let parsed = list.parse_nested_meta(|meta| {
            let key = meta.path.clone();
            if meta.input.peek(Token![=]) {
                let mut expr: syn::Expr = meta.value()?.parse()?;
                // A `$x:literal` from a `macro_rules!` arrives in an invisible group.
                while let syn::Expr::Group(g) = expr {
                    expr = *g.expr;
                }
                match expr {
                    syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(lit), .. }) => {
                        out.push(Item { key, value: Some(lit) });
                    }
                    other => {
                        let name = key_name(&key);
                        errors.spanned(other, format!("expected a string literal, as in `{name} = \"...\"`"));
                    }
                }
            } else {
                if meta.input.peek(syn::token::Paren) {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    content.parse::<TokenStream>()?;
                }
                out.push(Item { key, value: None });
            }
            Ok(())
        });
        if let Err(e) = parsed {
            errors.push(e);
        }
    }
    out
}

fn key_name(key: &Path) -> String {
    key.to_token_stream().to_string().replace(' ', "")
}

/// The known key closest to `name`, if it is a plausible misspelling.
fn suggestion(name: &str, keys: &[&'static str]) -> Option<&'static str> {
    keys.iter().copied().map(|k| (distance(name, k), k)).filter(|(d, _)| *d <= 2).min().map(|(_, k)| k)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Checks that `item` is a known key for `place`, with a string value, and
/// not given twice; returns the key's name and literal when it is usable.
fn known<'i>(
    item: &'i Item,
    place: Place,
    seen: &mut Vec<String>,
    errors: &mut Errors,
) -> Option<(String, &'i LitStr)> {
    let name = key_name(&item.key);
    let keys = place.keys();
    if !keys.contains(&name.as_str()) {
        let all = ["rename", "rename_all", "crate", "tag"];
        let msg = if all.contains(&name.as_str()) {
            let hint = match (place, name.as_str()) {
                (Place::Enum, "rename") => "; put it on a variant, or use `rename_all` here",
                (Place::Enum, "tag") => {
                    "; set a variant's tag with `rename` on it, or all of them with `rename_all`"
                }
                (Place::Struct, "rename_all") => "; set a struct's tag with `tag = \"...\"`",
                (Place::Variant, _) => "; a variant takes only `rename = \"...\"`",
                _ => "",
            };
            format!("`{name}` is not allowed on {}{hint}", place.name())
        } else {
            let list = keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
            let expected = if keys.len() == 1 { list } else { format!("one of {list}") };
            match suggestion(&name, keys) {
                Some(s) => format!("unknown aemp attribute `{name}`; did you mean `{s}`?"),
                None => format!("unknown aemp attribute `{name}` (expected {expected} on {})", place.name()),
            }
        };
        errors.spanned(&item.key, msg);
        return None;
    }
    let Some(lit) = &item.value else {
        errors.spanned(&item.key, format!("expected `{name} = \"...\"`"));
        return None;
    };
    if seen.contains(&name) {
        errors.spanned(&item.key, format!("duplicate `{name}` attribute"));
        return None;
    }
    seen.push(name.clone());
    Some((name, lit))
}

fn setting<T>(item: &Item, lit: &LitStr, value: T) -> Option<Setting<T>> {
    Some(Setting { value, key: item.key.clone(), lit: lit.clone() })
}

impl Container {
    /// Parses the attributes of an enum (`is_enum`) or a struct.
    pub(crate) fn parse(attrs: &[Attribute], is_enum: bool, errors: &mut Errors) -> Container {
        let place = if is_enum { Place::Enum } else { Place::Struct };
        let mut out = Container::default();
        let mut seen = Vec::new();
        for item in items(attrs, errors) {
            let Some((name, lit)) = known(&item, place, &mut seen, errors) else { continue };
            match name.as_str() {
                "rename_all" => match RenameRule::from_name(&lit.value()) {
                    Some(rule) => out.rename_all = setting(&item, lit, rule),
                    None => errors.spanned(
                        lit,
                        format!(
                            "unknown rename rule {:?}; expected one of {}",
                            lit.value(),
                            RenameRule::names()
                        ),
                    ),
                },
                "crate" => match lit.parse::<Path>() {
                    Ok(path) => out.krate = setting(&item, lit, path),
                    Err(_) => errors.spanned(lit, format!("{:?} is not a path to a crate", lit.value())),
                },
                "tag" => out.tag = setting(&item, lit, lit.value()),
                _ => out.rename = setting(&item, lit, lit.value()),
            }
        }
        out
    }
}

impl Variant {
    /// Parses the attributes of an enum variant.
    pub(crate) fn parse(attrs: &[Attribute], errors: &mut Errors) -> Variant {
        let mut out = Variant::default();
        let mut seen = Vec::new();
        for item in items(attrs, errors) {
            if let Some((_, lit)) = known(&item, Place::Variant, &mut seen, errors) {
                out.rename = setting(&item, lit, lit.value());
            }
        }
        out
    }
}

/// Rejects `#[aemp(...)]` on a field: no field attributes exist.
pub(crate) fn reject_on_field(attrs: &[Attribute], errors: &mut Errors) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("aemp")) {
        errors.spanned(attr, "`#[aemp(...)]` attributes are not supported on fields");
    }
}

#[cfg(test)]
mod tests {
    use super::{distance, suggestion};

    #[test]
    fn misspelt_keys_get_a_suggestion() {
        assert_eq!(distance("renme", "rename"), 1);
        assert_eq!(suggestion("renme", &["rename", "rename_all"]), Some("rename"));
        assert_eq!(suggestion("rename_al", &["rename", "rename_all"]), Some("rename_all"));
        assert_eq!(suggestion("bogus", &["rename"]), None);
    }
}
