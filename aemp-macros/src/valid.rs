//! Checks that the parsed input can become a message type: no generics, at
//! least one message, distinct non-empty tags, no conflicting settings.

use std::collections::HashMap;

use syn::GenericParam;

use crate::ast::{Body, Input};
use crate::attr::Errors;

/// Records every problem of `input`.
pub(crate) fn check(input: &Input<'_>, errors: &mut Errors) {
    generics(input, errors);
    if let Body::Enum(variants) = &input.body {
        if variants.is_empty() {
            errors.spanned(
                input.ident,
                "an enum without variants cannot be a message: it has no tag to send or receive",
            );
        }
    }
    if let (Some(_), Some(rename)) = (&input.attrs.tag, &input.attrs.rename) {
        errors.spanned(rename.tokens(), "`rename` and `tag` both set the struct's tag; keep one of them");
    }
    tags(input, errors);
}

fn generics(input: &Input<'_>, errors: &mut Errors) {
    for param in &input.generics.params {
        let what = match param {
            GenericParam::Type(_) => {
                "generic type parameters are not supported by `AempMessage`: \
                 give each message type its concrete field types"
            }
            GenericParam::Lifetime(_) => {
                "lifetime parameters are not supported by `AempMessage`: \
                 a message owns its data (`Message` requires `'static`)"
            }
            GenericParam::Const(_) => "const generic parameters are not supported by `AempMessage`",
        };
        errors.spanned(param, what);
    }
}

fn tags(input: &Input<'_>, errors: &mut Errors) {
    let mut seen: HashMap<&str, &syn::Ident> = HashMap::new();
    for m in input.messages() {
        if m.tag.is_empty() {
            errors.spanned(&m.tag_tokens, "a message tag must not be empty");
            continue;
        }
        match seen.get(m.tag.as_str()) {
            Some(first) => errors.spanned(
                &m.tag_tokens,
                format!("duplicate tag {:?}: variant `{first}` already has it", m.tag),
            ),
            None => {
                seen.insert(&m.tag, m.ident);
            }
        }
    }
}
