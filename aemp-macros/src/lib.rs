//! Derive macros for [aemp](https://docs.rs/aemp): `#[derive(AempMessage)]`.
//!
//! Use them through the `aemp` crate, which re-exports them
//! (`use aemp::AempMessage;`); the generated code refers to `::aemp`.
//!
//! The crate is split as serde_derive is: `ast.rs` and `attr.rs` parse,
//! `valid.rs` checks, `expand.rs` generates; `case.rs` spells tags.

mod ast;
mod attr;
mod case;
mod expand;
mod valid;

use proc_macro::TokenStream;

/// Derives `aemp::Message` for an enum (one message per variant) or a
/// struct (one message), so that values convert to and from `aemp::Msg`.
///
/// # Wire shape
/// A message is a list whose first element is a string tag:
/// - an enum variant becomes `[tag, fields...]`: a unit variant `[tag]`,
///   tuple and struct variants their fields in declaration order (field
///   names are not sent);
/// - a struct (named, tuple or unit) becomes `[tag, fields...]` with one
///   fixed tag.
///
/// Each field is converted with `aemp::to_value` / `aemp::from_value_ref`,
/// so any serde type works, port IDs included.
///
/// # Tags
/// By default the tag is the variant's (or struct's) name in `snake_case`:
/// `JoinRoom` is `"join_room"`, `HTTPGet` is `"http_get"`.
///
/// | attribute | on | effect |
/// |---|---|---|
/// | `#[aemp(rename = "...")]` | variant, struct | sets the tag |
/// | `#[aemp(tag = "...")]` | struct | sets the tag (same as `rename`) |
/// | `#[aemp(rename_all = "...")]` | enum | spells every variant's tag by a rule: `"snake_case"`, `"lowercase"`, `"UPPERCASE"`, `"camelCase"`, `"PascalCase"`, `"SCREAMING_SNAKE_CASE"`, `"kebab-case"`, `"SCREAMING-KEBAB-CASE"` |
/// | `#[aemp(crate = "...")]` | enum, struct | the path of the aemp crate (default `::aemp`) |
///
/// A rule splits the name into words at case changes and underscores
/// (`HTTPRequest` is `HTTP` + `Request`); `PascalCase` and `camelCase` keep
/// the letters after each word's first as written.
///
/// Mistakes are compile errors at the offending tokens, all reported at
/// once: unknown or malformed attributes, duplicate or empty tags, unions,
/// enums without variants, generic or lifetime parameters.
///
/// ```
/// use aemp::{msg, AempMessage, Message, PortId};
///
/// #[derive(AempMessage, Debug, PartialEq)]
/// enum Chat {
///     Join { client: PortId, nick: String },
///     Say(String),
///     #[aemp(rename = "bye")]
///     Leave,
/// }
///
/// let client: PortId = "n#p".parse().unwrap();
/// let join = Chat::Join { client: client.clone(), nick: "bob".into() };
/// assert_eq!(join.to_msg().unwrap(), msg!["join", &client, "bob"]);
/// assert_eq!(Chat::from_msg(&msg!["bye"]).unwrap(), Chat::Leave);
/// assert_eq!(Chat::TAGS, ["join", "say", "bye"]);
///
/// let err = Chat::from_msg(&msg!["join", &client, 5]).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"message "join": field "nick" (element 2): invalid type: expected a string, found integer 5"#
/// );
/// ```
#[proc_macro_derive(AempMessage, attributes(aemp))]
pub fn derive_aemp_message(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input).unwrap_or_else(syn::Error::into_compile_error).into()
}
