//! Parsing of the helper attributes: `#[trace(...)]` and `#[deep_copy(...)]`.
//!
//! Every function here records its errors in an [`Errors`] accumulator and
//! keeps going, so that one compilation reports every misuse of an item at
//! once.

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Lit, LitBool, Meta, Token};

/// Collects the errors of one derive input; they are combined into a single
/// `syn::Error` (one `compile_error!` per message) at the end.
#[derive(Default)]
pub(crate) struct Errors {
    first: Option<syn::Error>,
}

impl Errors {
    /// Records `error`.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.first {
            Some(first) => first.combine(error),
            None => self.first = Some(error),
        }
    }

    /// Records an error with `message` at `span`.
    pub(crate) fn push_at(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Records an error spanning the tokens of `tokens`.
    pub(crate) fn push_spanned(
        &mut self,
        tokens: impl quote::ToTokens,
        message: impl std::fmt::Display,
    ) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// `Err` with every recorded error, or `Ok(())` if there were none.
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.first {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// Which derive an attribute set belongs to; decides the attribute name
/// (`trace` or `deep_copy`) and which keys are accepted where.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Derive {
    /// `#[derive(Trace)]`, attributes `#[trace(...)]`.
    Trace,
    /// `#[derive(DeepCopy)]`, attributes `#[deep_copy(...)]`.
    DeepCopy,
}

impl Derive {
    /// The helper attribute's name.
    pub(crate) fn attr_name(self) -> &'static str {
        match self {
            Derive::Trace => "trace",
            Derive::DeepCopy => "deep_copy",
        }
    }

    /// The field attribute's key (`skip` or `shallow`).
    fn field_key(self) -> &'static str {
        match self {
            Derive::Trace => "skip",
            Derive::DeepCopy => "shallow",
        }
    }

    /// How the type-level keys read in an error message.
    fn container_keys(self) -> &'static str {
        match self {
            Derive::Trace => {
                "`#[trace(finalize)]`, `#[trace(needs_trace = true)]` (or `false`) and `#[trace(crate = \"path\")]`"
            }
            Derive::DeepCopy => "`#[deep_copy(crate = \"path\")]`",
        }
    }
}

/// The attributes on the type itself.
#[derive(Default)]
pub(crate) struct ContainerAttrs {
    /// `#[trace(finalize)]`: forward `Trace::finalize` to `Finalize`.
    pub(crate) finalize: Option<Span>,
    /// `#[trace(needs_trace = <bool>)]`: the value of `needs_trace()`, instead
    /// of the one computed from the fields.
    pub(crate) needs_trace: Option<LitBool>,
    /// `#[trace(crate = "path")]`: where the ouro items live.
    pub(crate) krate: Option<syn::Path>,
}

/// The attributes on one field.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    /// `#[trace(skip)]` or `#[deep_copy(shallow)]`, with the span of the key.
    pub(crate) flag: Option<Span>,
}

/// The `key = value` or bare `key` items of every `#[<name>(...)]` in
/// `attrs`. Malformed attributes are reported in `errors` and skipped.
fn items(attrs: &[Attribute], derive: Derive, example: &str, errors: &mut Errors) -> Vec<Meta> {
    let name = derive.attr_name();
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident(name)) {
        match &attr.meta {
            Meta::List(_) => {}
            _ => {
                errors.push_spanned(
                    attr,
                    format!("expected a list: `#[{name}(...)]`, e.g. `#[{name}({example})]`"),
                );
                continue;
            }
        }
        match attr.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) {
            Ok(metas) => out.extend(metas),
            Err(error) => errors.push(syn::Error::new(
                error.span(),
                format!("malformed `#[{name}(...)]` attribute: {error}"),
            )),
        }
    }
    out
}

/// The key of `meta` as written (`skip`, `crate`, `foo::bar`).
fn key(meta: &Meta) -> String {
    let path = meta.path();
    let mut s = String::new();
    for (i, segment) in path.segments.iter().enumerate() {
        if i > 0 || path.leading_colon.is_some() {
            s.push_str("::");
        }
        s.push_str(&segment.ident.to_string());
    }
    s
}

/// Reports `meta` if it is not a bare word (`skip`, not `skip = true`).
fn expect_word(meta: &Meta, derive: Derive, errors: &mut Errors) -> bool {
    if let Meta::Path(_) = meta {
        return true;
    }
    let key = key(meta);
    let name = derive.attr_name();
    errors.push_spanned(
        meta,
        format!("`{key}` takes no value: write `#[{name}({key})]`"),
    );
    false
}

/// Parses the attributes on the type (struct, enum or union).
pub(crate) fn container(
    attrs: &[Attribute],
    derive: Derive,
    errors: &mut Errors,
) -> ContainerAttrs {
    let mut out = ContainerAttrs::default();
    let name = derive.attr_name();
    let example = match derive {
        Derive::Trace => "finalize",
        Derive::DeepCopy => "crate = \"ouro\"",
    };
    for meta in items(attrs, derive, example, errors) {
        let key = key(&meta);
        match (derive, key.as_str()) {
            (Derive::Trace, "finalize") => {
                if expect_word(&meta, derive, errors) {
                    if out.finalize.is_some() {
                        errors.push_spanned(&meta, "duplicate `#[trace(finalize)]`");
                    }
                    out.finalize = Some(meta.span());
                }
            }
            (Derive::Trace, "needs_trace") => {
                let value = match &meta {
                    Meta::NameValue(nv) => match &nv.value {
                        Expr::Lit(ExprLit { lit: Lit::Bool(b), .. }) => Some(b.clone()),
                        other => {
                            errors.push_spanned(
                                other,
                                "expected `true` or `false`: `#[trace(needs_trace = true)]`",
                            );
                            None
                        }
                    },
                    _ => {
                        errors.push_spanned(
                            &meta,
                            "expected a value: `#[trace(needs_trace = true)]` or `#[trace(needs_trace = false)]`",
                        );
                        None
                    }
                };
                if let Some(value) = value {
                    if out.needs_trace.is_some() {
                        errors.push_spanned(&meta, "duplicate `#[trace(needs_trace = ...)]`");
                    }
                    out.needs_trace = Some(value);
                }
            }
            (_, "crate") => {
                let path = match &meta {
                    Meta::NameValue(nv) => match &nv.value {
                        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => match s.parse::<syn::Path>() {
                            Ok(path) => Some(path),
                            Err(_) => {
                                errors.push_spanned(
                                    s,
                                    format!("`{}` is not a path: expected e.g. `#[{name}(crate = \"ouro\")]`", s.value()),
                                );
                                None
                            }
                        },
                        other => {
                            errors.push_spanned(
                                other,
                                format!("expected a string: `#[{name}(crate = \"path::to::ouro\")]`"),
                            );
                            None
                        }
                    },
                    _ => {
                        errors.push_spanned(
                            &meta,
                            format!("expected a path in a string: `#[{name}(crate = \"path::to::ouro\")]`"),
                        );
                        None
                    }
                };
                if let Some(path) = path {
                    if out.krate.is_some() {
                        errors.push_spanned(&meta, format!("duplicate `#[{name}(crate = ...)]`"));
                    }
                    out.krate = Some(path);
                }
            }
            (_, k) if k == derive.field_key() => {
                errors.push_spanned(
                    meta.path(),
                    format!("`#[{name}({k})]` goes on a field, not on the type"),
                );
            }
            _ => errors.push_spanned(
                meta.path(),
                format!("unknown attribute `{key}` in `#[{name}(...)]`; on a type, the attributes are {}", derive.container_keys()),
            ),
        }
    }
    out
}

/// Parses the attributes on a field.
pub(crate) fn field(attrs: &[Attribute], derive: Derive, errors: &mut Errors) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    let name = derive.attr_name();
    let flag = derive.field_key();
    for meta in items(attrs, derive, flag, errors) {
        let key = key(&meta);
        match (derive, key.as_str()) {
            (_, k) if k == flag => {
                if expect_word(&meta, derive, errors) {
                    if out.flag.is_some() {
                        errors.push_spanned(&meta, format!("duplicate `#[{name}({flag})]`"));
                    }
                    out.flag = Some(meta.span());
                }
            }
            (Derive::Trace, "finalize" | "needs_trace") | (_, "crate") => errors.push_spanned(
                meta.path(),
                format!("`{key}` goes on the type, not on a field: the only field attribute is `#[{name}({flag})]`"),
            ),
            _ => errors.push_spanned(
                meta.path(),
                format!("unknown attribute `{key}` in `#[{name}(...)]`; the only field attribute is `#[{name}({flag})]`"),
            ),
        }
    }
    out
}

/// Reports any `#[<name>(...)]` on an enum variant: the attributes go on the
/// type or on the variant's fields.
pub(crate) fn variant(attrs: &[Attribute], derive: Derive, errors: &mut Errors) {
    let name = derive.attr_name();
    for attr in attrs.iter().filter(|attr| attr.path().is_ident(name)) {
        errors.push_spanned(
            attr,
            format!(
                "`#[{name}(...)]` does not apply to an enum variant: put `#[{name}({})]` on the variant's fields",
                derive.field_key()
            ),
        );
    }
}
