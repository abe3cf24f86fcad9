//! The expansions of `#[derive(Trace)]` and `#[derive(DeepCopy)]`.
//!
//! Both derives read the input into the same small model ([`Input`]: the
//! variants of the type and the fields of each, with their attributes), then
//! build one `impl` from it. Every error found on the way is collected and
//! reported together.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Data, DeriveInput, Fields, Ident, Member, Type};

use crate::attr::{self, ContainerAttrs, Derive, Errors};

/// One field of a struct or variant.
struct Field<'a> {
    /// `name` or `0`.
    member: Member,
    /// The field's declared type.
    ty: &'a Type,
    /// `#[trace(skip)]` / `#[deep_copy(shallow)]`, with its span.
    flag: Option<Span>,
    /// The local the field is bound to in generated `match` arms.
    binding: Ident,
}

impl Field<'_> {
    /// How the field is named in an error message.
    fn describe(&self) -> String {
        match &self.member {
            Member::Named(ident) => format!("`{ident}`"),
            Member::Unnamed(index) => format!("`{}`", index.index),
        }
    }
}

/// The struct itself, or one enum variant.
struct Variant<'a> {
    /// The variant's name; `None` for a struct.
    ident: Option<&'a Ident>,
    fields: Vec<Field<'a>>,
}

impl Variant<'_> {
    /// The path used in patterns and constructors: `Self` or `Self::Variant`.
    fn path(&self) -> TokenStream {
        match self.ident {
            Some(ident) => quote!(Self::#ident),
            None => quote!(Self),
        }
    }
}

/// The derive input, read into the model both derives work from.
struct Input<'a> {
    attrs: ContainerAttrs,
    variants: Vec<Variant<'a>>,
    /// `true` for an enum (an enum without variants has no value to visit).
    is_enum: bool,
}

/// Reads `input` into the model, recording misuse in `errors`.
fn read<'a>(input: &'a DeriveInput, derive: Derive, errors: &mut Errors) -> Input<'a> {
    let attrs = attr::container(&input.attrs, derive, errors);
    check_not_packed(input, derive, errors);
    let fields_of = |fields: &'a Fields, errors: &mut Errors| -> Vec<Field<'a>> {
        fields
            .iter()
            .enumerate()
            .map(|(i, field)| Field {
                member: match &field.ident {
                    Some(ident) => Member::Named(ident.clone()),
                    None => Member::Unnamed(syn::Index {
                        index: i as u32,
                        span: field.ty.span(),
                    }),
                },
                ty: &field.ty,
                flag: attr::field(&field.attrs, derive, errors).flag,
                binding: format_ident!("__ouro_field_{}", i),
            })
            .collect()
    };
    let (variants, is_enum) = match &input.data {
        Data::Struct(data) => (
            vec![Variant {
                ident: None,
                fields: fields_of(&data.fields, errors),
            }],
            false,
        ),
        Data::Enum(data) => {
            let variants = data
                .variants
                .iter()
                .map(|variant| {
                    attr::variant(&variant.attrs, derive, errors);
                    Variant {
                        ident: Some(&variant.ident),
                        fields: fields_of(&variant.fields, errors),
                    }
                })
                .collect();
            (variants, true)
        }
        Data::Union(data) => {
            let what = match derive {
                Derive::Trace => {
                    "`#[derive(Trace)]` does not support unions: the collector cannot know which field holds a value; \
                     implement `Trace` by hand, or use an enum"
                }
                Derive::DeepCopy => {
                    "`#[derive(DeepCopy)]` does not support unions: it cannot know which field holds a value; \
                     implement `DeepCopy` by hand, or use an enum"
                }
            };
            errors.push_at(data.union_token.span, what);
            (Vec::new(), false)
        }
    };
    Input {
        attrs,
        variants,
        is_enum,
    }
}

/// Rejects `#[repr(packed)]`: the generated code borrows every field, and a
/// field of a packed struct may be unaligned.
fn check_not_packed(input: &DeriveInput, derive: Derive, errors: &mut Errors) {
    for attr in input
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("repr"))
    {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("packed") {
                let name = match derive {
                    Derive::Trace => "Trace",
                    Derive::DeepCopy => "DeepCopy",
                };
                errors.push_spanned(
                    &meta.path,
                    format!(
                        "`#[derive({name})]` does not support `#[repr(packed)]` types: their fields may be unaligned and \
                         cannot be borrowed; implement `{name}` by hand"
                    ),
                );
            }
            // Skip any arguments, e.g. `packed(2)` or `align(8)`.
            if meta.input.peek(syn::token::Paren) {
                let _ = meta.parse_nested_meta(|_| Ok(()));
            }
            Ok(())
        });
    }
}

/// The path to the ouro crate: `#[trace(crate = "...")]` or `::ouro`.
fn krate(attrs: &ContainerAttrs) -> TokenStream {
    match &attrs.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::ouro),
    }
}

/// `input`'s generics with `T: <bound>` added for every type parameter
/// (lifetimes and const parameters pass through; `where` clauses are kept).
fn bounded_generics(input: &DeriveInput, bound: &TokenStream) -> syn::Generics {
    let mut generics = input.generics.clone();
    let params: Vec<Ident> = generics
        .type_params()
        .map(|param| param.ident.clone())
        .collect();
    let where_clause = generics.make_where_clause();
    for ident in params {
        where_clause
            .predicates
            .push(syn::parse_quote!(#ident: #bound));
    }
    generics
}

/// Finds the path segments of a type: whether it mentions a handle
/// (`Gc`/`Weak`) or a given name (the type being derived, or `Self`).
struct Mentions<'a> {
    /// The derived type's name.
    self_name: &'a Ident,
    /// A `Gc`/`Weak` path segment, if any.
    handle: Option<String>,
    /// Whether the derived type's own name or `Self` appears.
    recursive: bool,
    /// Inside a function signature (a `fn` pointer's, or an `Fn*` trait's
    /// parenthesized arguments and return type): a handle named there is
    /// passed or returned, not held, so it does not count as `handle`.
    signature: bool,
}

impl<'a> Mentions<'a> {
    fn of(ty: &Type, self_name: &'a Ident) -> Self {
        let mut mentions = Mentions {
            self_name,
            handle: None,
            recursive: false,
            signature: false,
        };
        mentions.visit_type(ty);
        mentions
    }
}

impl<'ast> Visit<'ast> for Mentions<'_> {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        // `std::rc::Weak`, `alloc::sync::Weak`, `rc::Weak`: std's weak
        // pointers, which are not collector handles.
        let std_path = path.segments.first().is_some_and(|first| {
            first.ident == "std" || first.ident == "alloc" || first.ident == "core"
        });
        let mut previous: Option<&Ident> = None;
        for segment in &path.segments {
            let ident = &segment.ident;
            if ident == self.self_name || ident == "Self" {
                self.recursive = true;
            }
            let std_weak = std_path || previous.is_some_and(|p| p == "rc");
            if (ident == "Gc" || ident == "Weak")
                && !std_weak
                && !self.signature
                && self.handle.is_none()
            {
                self.handle = Some(ident.to_string());
            }
            previous = Some(ident);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, _: &'ast syn::Macro) {
        // A type written by a macro is opaque.
    }

    fn visit_type_bare_fn(&mut self, f: &'ast syn::TypeBareFn) {
        let outer = core::mem::replace(&mut self.signature, true);
        syn::visit::visit_type_bare_fn(self, f);
        self.signature = outer;
    }

    fn visit_parenthesized_generic_arguments(
        &mut self,
        args: &'ast syn::ParenthesizedGenericArguments,
    ) {
        let outer = core::mem::replace(&mut self.signature, true);
        syn::visit::visit_parenthesized_generic_arguments(self, args);
        self.signature = outer;
    }
}

/// Whether the derived type's name or `Self` appears in `node` (a type, a
/// generic argument, an expression).
fn mentions_self(self_name: &Ident, visit: impl FnOnce(&mut Mentions<'_>)) -> bool {
    let mut mentions = Mentions {
        self_name,
        handle: None,
        recursive: false,
        signature: false,
    };
    visit(&mut mentions);
    mentions.recursive
}

/// Types whose `Trace` impl does not look at their type argument (ouro's
/// handles, `PhantomData`, `Rc`, `Arc`): a field type under one of them
/// is asked as written, even if it names the derived type. Were the name
/// another type's, asking it is still exact (or a cycle rustc rejects).
const OPAQUE: &[&str] = &["Gc", "Weak", "PhantomData", "Rc", "Arc"];

/// The std containers the derive looks through when the derived type occurs
/// in their type arguments (`ouro::__private::types` re-exports each under
/// its name): the field's `STRUCTURAL` is asked of std's container, and the
/// generated code checks that the type as written is that container.
const CONTAINERS: &[&str] = &[
    "Option", "Result", "Box", "Vec", "VecDeque", "HashMap", "HashSet", "BTreeMap", "BTreeSet",
    "RefCell", "OnceCell", "Mutex", "RwLock",
];

/// Reads the field types of a derived type that name the type itself, for
/// `STRUCTURAL` (the coinductive reading of `ouro::__private`): every
/// occurrence of the derived type is replaced by a placeholder that counts
/// as structural, looking only through tuples, arrays, slices and std's
/// containers (each replaced by std's own, and checked to be it); an
/// occurrence anywhere else makes the field not structural.
struct Recursion<'a> {
    /// The derived type's name.
    name: &'a Ident,
    /// The generic arguments of `Self`, as text (`'a`, `T`, `N`).
    self_args: Vec<String>,
    /// A generic parameter has the type's name, so the bare name is not
    /// the type.
    shadowed: bool,
    /// `ouro::__private::Recursive`.
    placeholder: Type,
    /// `ouro::__private::types`, where std's containers are.
    types: TokenStream,
    /// How many placeholders were put in so far.
    placed: usize,
    /// The containers looked through to a placeholder: each as written and
    /// as std's container of that name with the same arguments, which the
    /// generated code checks are the same type.
    containers: Vec<(Type, Type)>,
}

impl<'a> Recursion<'a> {
    fn new(input: &'a DeriveInput, krate: &TokenStream) -> Self {
        let name = &input.ident;
        let text = |tokens: &dyn ToTokens| -> String {
            tokens
                .to_token_stream()
                .to_string()
                .split_whitespace()
                .collect()
        };
        let self_args = input
            .generics
            .params
            .iter()
            .map(|param| match param {
                syn::GenericParam::Lifetime(l) => text(&l.lifetime),
                syn::GenericParam::Type(t) => text(&t.ident),
                syn::GenericParam::Const(c) => text(&c.ident),
            })
            .collect();
        let shadowed = input.generics.params.iter().any(|param| match param {
            syn::GenericParam::Type(t) => t.ident == *name,
            syn::GenericParam::Const(c) => c.ident == *name,
            syn::GenericParam::Lifetime(_) => false,
        });
        Recursion {
            name,
            self_args,
            shadowed,
            placeholder: syn::parse_quote!(#krate::__private::Recursive),
            types: quote!(#krate::__private::types),
            placed: 0,
            containers: Vec::new(),
        }
    }

    /// `ty` with every occurrence of the derived type replaced by the
    /// placeholder, or `None` if one occurs where it cannot be replaced (a
    /// projection such as `Self::Assoc`, a type other than std's
    /// containers, a reference, a path naming the type in another way).
    fn substitute(&mut self, ty: &Type) -> Option<Type> {
        if !mentions_self(self.name, |m| m.visit_type(ty)) {
            return Some(ty.clone());
        }
        let mut ty = ty.clone();
        match &mut ty {
            Type::Paren(t) => *t.elem = self.substitute(&t.elem)?,
            Type::Group(t) => *t.elem = self.substitute(&t.elem)?,
            Type::Tuple(t) => {
                for elem in t.elems.iter_mut() {
                    *elem = self.substitute(elem)?;
                }
            }
            Type::Slice(t) => *t.elem = self.substitute(&t.elem)?,
            Type::Array(t) => {
                if mentions_self(self.name, |m| m.visit_expr(&t.len)) {
                    return None;
                }
                *t.elem = self.substitute(&t.elem)?;
            }
            Type::Path(t) if t.qself.is_none() => {
                if self.is_self(&t.path) {
                    self.placed += 1;
                    return Some(self.placeholder.clone());
                }
                let written = Type::Path(t.clone());
                let last = t.path.segments.last()?;
                if OPAQUE.iter().any(|name| last.ident == name) {
                    return Some(written);
                }
                if !CONTAINERS.iter().any(|name| last.ident == name) || !is_std_path(&t.path) {
                    return None;
                }
                let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
                    return None;
                };
                let mut replaced = args.clone();
                let before = self.placed;
                for arg in replaced.args.iter_mut() {
                    match arg {
                        syn::GenericArgument::Type(arg) => *arg = self.substitute(arg)?,
                        other => {
                            if mentions_self(self.name, |m| m.visit_generic_argument(other)) {
                                return None;
                            }
                        }
                    }
                }
                if self.placed == before {
                    return Some(written);
                }
                let (types, ident) = (&self.types, &last.ident);
                let std_written: Type = syn::parse_quote!(#types::#ident #args);
                self.containers.push((written, std_written));
                return Some(syn::parse_quote!(#types::#ident #replaced));
            }
            _ => return None,
        }
        Some(ty)
    }

    /// Whether `path` is the derived type exactly as `Self` is: `Self`, or
    /// its bare name with its own generic parameters (not `self::Name`,
    /// which names another type inside a function body).
    fn is_self(&self, path: &syn::Path) -> bool {
        if path.leading_colon.is_some() {
            return false;
        }
        let segments: Vec<&syn::PathSegment> = path.segments.iter().collect();
        let (last, prefix) = match segments.split_last() {
            Some((last, prefix)) => (*last, prefix),
            None => return false,
        };
        if last.ident == "Self" {
            return prefix.is_empty() && last.arguments.is_none();
        }
        // Only the bare name: `self::Name` is the module's item, which is
        // another type when the derive is inside a function body.
        if !prefix.is_empty() || self.shadowed || last.ident != *self.name {
            return false;
        }
        let args: Vec<String> = match &last.arguments {
            syn::PathArguments::None => Vec::new(),
            syn::PathArguments::AngleBracketed(args) => args
                .args
                .iter()
                .map(|arg| {
                    arg.to_token_stream()
                        .to_string()
                        .split_whitespace()
                        .collect()
                })
                .collect(),
            syn::PathArguments::Parenthesized(_) => return false,
        };
        args == self.self_args
    }
}

/// `ty` with std's `Box<X>` replaced by `X` wherever `X` is sized, looking
/// through tuples, arrays and std's containers only (whose `needs_trace` is
/// their elements'), or `None` when there is no such box. `Box<T>` answers
/// `needs_trace() == true` whatever `T` is (`T` may be a trait object, whose
/// answer only its value knows), but a box of a sized type needs tracing
/// exactly when that type does: asking `X` keeps a type with a
/// `Box<(i32, char)>` field untracked. `Box<str>` is asked as `String`
/// (never), `Box<[X]>` as `Vec<X>`; a trait object or a `?Sized` parameter
/// is left boxed.
///
/// Each box looked through is pushed on `boxes` as written and as std's
/// `Box` (`types` is `ouro::__private::types`), for the generated code to
/// check that they are the same type (a type of another crate named `Box`
/// may hold handles whatever its argument).
fn unbox(
    ty: &Type,
    unsized_params: &[&Ident],
    types: &TokenStream,
    boxes: &mut Vec<(Type, Type)>,
) -> Option<Type> {
    let mut changed = false;
    let ty = walk(ty, unsized_params, types, boxes, &mut changed);
    return changed.then_some(ty);

    fn walk(
        ty: &Type,
        unsized_params: &[&Ident],
        types: &TokenStream,
        boxes: &mut Vec<(Type, Type)>,
        changed: &mut bool,
    ) -> Type {
        let written = ty.clone();
        let mut ty = ty.clone();
        match &mut ty {
            Type::Paren(t) => *t.elem = walk(&t.elem, unsized_params, types, boxes, changed),
            Type::Group(t) => *t.elem = walk(&t.elem, unsized_params, types, boxes, changed),
            Type::Tuple(t) => {
                for elem in t.elems.iter_mut() {
                    *elem = walk(elem, unsized_params, types, boxes, changed);
                }
            }
            Type::Array(t) => *t.elem = walk(&t.elem, unsized_params, types, boxes, changed),
            Type::Path(t) if t.qself.is_none() && is_std_path(&t.path) => {
                let Some(last) = t.path.segments.last_mut() else {
                    return ty;
                };
                if !CONTAINERS.iter().any(|name| last.ident == name) {
                    return ty;
                }
                let syn::PathArguments::AngleBracketed(args) = &mut last.arguments else {
                    return ty;
                };
                if last.ident == "Box" {
                    let [syn::GenericArgument::Type(inner)] =
                        args.args.iter().collect::<Vec<_>>()[..]
                    else {
                        return ty;
                    };
                    let inner = inner.clone();
                    let sized = match &inner {
                        Type::TraitObject(_) | Type::ImplTrait(_) | Type::Macro(_) => None,
                        Type::Slice(s) => {
                            let elem = walk(&s.elem, unsized_params, types, boxes, changed);
                            Some(syn::parse_quote!(::std::vec::Vec<#elem>))
                        }
                        Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => {
                            Some(syn::parse_quote!(::std::string::String))
                        }
                        Type::Path(p)
                            if p.qself.is_none()
                                && unsized_params.iter().any(|u| p.path.is_ident(*u)) =>
                        {
                            None
                        }
                        _ => Some(walk(&inner, unsized_params, types, boxes, changed)),
                    };
                    if let Some(sized) = sized {
                        *changed = true;
                        boxes.push((written, syn::parse_quote!(#types::Box<#inner>)));
                        return sized;
                    }
                    return ty;
                }
                for arg in args.args.iter_mut() {
                    if let syn::GenericArgument::Type(arg) = arg {
                        *arg = walk(arg, unsized_params, types, boxes, changed);
                    }
                }
            }
            _ => {}
        }
        ty
    }
}

/// Whether `path` can only name a std item of its last segment's name: a
/// bare name, or a path from `std`, `core` or `alloc` (the container check
/// in the generated code catches a bare name that is not std's).
fn is_std_path(path: &syn::Path) -> bool {
    let n = path.segments.len();
    if n == 1 {
        return path.leading_colon.is_none();
    }
    let first = &path.segments[0].ident;
    (first == "std" || first == "core" || first == "alloc")
        && path
            .segments
            .iter()
            .take(n - 1)
            .all(|s| s.arguments.is_none())
}

/// `ty` as written, with the spaces `to_string` puts between tokens removed
/// where a person would not write them (`Vec<Gc<Node>>`, `a::B`).
fn tidy(ty: &Type) -> String {
    let mut s = ty.to_token_stream().to_string();
    for (from, to) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        (" ;", ";"),
        ("& ", "&"),
    ] {
        s = s.replace(from, to);
    }
    s
}

/// A path as a person writes it: `ouro`, `crate::reexport`.
fn tidy_path(path: &TokenStream) -> String {
    let s: String = path.to_string().split_whitespace().collect();
    s.trim_start_matches("::").to_owned()
}

/// Expands `#[derive(Trace)]`.
pub(crate) fn trace(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let model = read(input, Derive::Trace, &mut errors);

    // `#[trace(skip)]` on a field whose type names a handle would hide an
    // edge from the collector: every cycle through it would leak. (A handle
    // named only in a function signature, `Box<dyn Fn(&Gc<Node>)>`, is an
    // argument or a result, not held: such a field may be skipped, on the
    // user's promise that what it captures holds no handle.)
    for variant in &model.variants {
        for field in &variant.fields {
            let Some(skip) = field.flag else { continue };
            if let Some(handle) = Mentions::of(field.ty, &input.ident).handle {
                let hint = if handle == "Weak" {
                    " (if this is std's `Weak`, write its full path: `std::rc::Weak` or `std::sync::Weak`)"
                } else {
                    ""
                };
                errors.push_at(
                    skip,
                    format!(
                        "field {} holds a `{handle}` (its type is `{}`), so it cannot be skipped: the collector must \
                         see every handle, or the cycles through it leak; remove `#[trace(skip)]`{hint}",
                        field.describe(),
                        tidy(field.ty),
                    ),
                );
            }
        }
    }
    errors.finish()?;

    let krate = krate(&model.attrs);
    let trace_trait = quote!(#krate::Trace);
    let generics = bounded_generics(input, &trace_trait);
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let name = &input.ident;

    // Every traced field goes through a helper trait of its own, implemented
    // for every `Trace` type, so that a field type without `Trace` is
    // reported once, on the field's type, with a message naming the field.
    //
    // NEEDS_TRACE is the OR over the traced fields. A field whose type names
    // the derived type itself (`Option<Box<Self>>`) counts as `true`: asking
    // the field type would make the constant depend on itself.
    let mut helpers = Vec::new();
    let mut needs_trace_terms = Vec::new();
    let mut boxes = Vec::new();
    let unsized_params: Vec<&Ident> = input
        .generics
        .type_params()
        .filter(|p| {
            p.bounds
                .iter()
                .chain(input.generics.where_clause.iter().flat_map(|w| {
                    w.predicates.iter().flat_map(|pred| match pred {
                        syn::WherePredicate::Type(t)
                            if matches!(&t.bounded_ty, Type::Path(tp) if tp.path.is_ident(&p.ident)) =>
                        {
                            t.bounds.iter().collect::<Vec<_>>()
                        }
                        _ => Vec::new(),
                    })
                }))
                .any(|b| matches!(b, syn::TypeParamBound::Trait(t) if matches!(t.modifier, syn::TraitBoundModifier::Maybe(_))))
        })
        .map(|p| &p.ident)
        .collect();
    let mut structural_terms = Vec::new();
    let mut recursion = Recursion::new(input, &krate);
    let mut opaque = false;
    let mut arms = Vec::new();
    for variant in &model.variants {
        let owner = match variant.ident {
            Some(v) => format!("{name}::{v}"),
            None => name.to_string(),
        };
        let traced: Vec<&Field<'_>> = variant.fields.iter().filter(|f| f.flag.is_none()).collect();
        let mut calls = Vec::new();
        for field in &traced {
            let (ty, binding) = (field.ty, &field.binding);
            let helper = format_ident!("__OuroTraceField{}", helpers.len());
            let message = format!(
                "field {} of `{owner}` has type `{{Self}}`, which does not implement `{}::Trace`",
                field.describe(),
                tidy_path(&krate),
            );
            helpers.push(quote! {
                #[diagnostic::on_unimplemented(
                    message = #message,
                    label = "the type of a traced field must implement `Trace`",
                    note = "derive or implement `Trace` for `{Self}`, or mark the field `#[trace(skip)]` if it never holds a `Gc`",
                )]
                trait #helper {
                    fn needs_trace() -> bool where Self: ::core::marker::Sized;
                    fn structural() -> #krate::Structural<Self> where Self: ::core::marker::Sized;
                    fn trace(&self, visitor: &mut #krate::Visitor<'_>);
                }

                impl<__OuroT: #trace_trait + ?::core::marker::Sized> #helper for __OuroT {
                    #[inline(always)]
                    fn needs_trace() -> bool where Self: ::core::marker::Sized {
                        <__OuroT as #trace_trait>::needs_trace()
                    }
                    #[inline(always)]
                    fn structural() -> #krate::Structural<Self> where Self: ::core::marker::Sized {
                        <__OuroT as #trace_trait>::structural()
                    }
                    #[inline]
                    fn trace(&self, visitor: &mut #krate::Visitor<'_>) {
                        <__OuroT as #trace_trait>::trace(self, visitor)
                    }
                }
            });
            let recursive = Mentions::of(ty, name).recursive;
            needs_trace_terms.push(if recursive {
                quote_spanned!(ty.span()=> true)
            } else if let Some(unboxed) = model
                .attrs
                .krate
                .is_none()
                .then(|| unbox(ty, &unsized_params, &recursion.types, &mut boxes))
                .flatten()
            {
                // Asked without std's `Box` of a sized type (see `unbox`;
                // only with ouro's own `__private`, which a crate path may
                // not have); the field's own type still goes through the
                // helper, for its error message.
                quote_spanned!(ty.span()=> <#unboxed as #trace_trait>::needs_trace())
            } else {
                quote_spanned!(ty.span()=> <#ty as #helper>::needs_trace())
            });
            // STRUCTURAL is the AND over the traced fields (the generated
            // `trace` only calls theirs). A field naming the derived type
            // itself is asked with the type replaced by a placeholder that
            // counts as structural (`Recursion`), or, where that cannot be
            // done, makes the type not structural.
            match recursion.substitute(ty) {
                Some(assumed) => structural_terms
                    .push(quote_spanned!(ty.span()=> .and(<#assumed as #helper>::structural()))),
                None => opaque = true,
            }
            // `visitor` keeps the call-site span so it resolves to the
            // parameter even when the field type comes from a macro.
            let visitor = quote!(visitor);
            calls.push(quote_spanned! {ty.span()=>
                if <#ty as #helper>::needs_trace() {
                    <#ty as #helper>::trace(#binding, #visitor);
                }
            });
        }
        let path = variant.path();
        let members = traced.iter().map(|f| &f.member);
        let bindings = traced.iter().map(|f| &f.binding);
        arms.push(quote! {
            #path { #(#members: #bindings,)* .. } => { #(#calls)* }
        });
    }
    // With `#[trace(crate = "...")]` the `__private` items the recursion
    // rests on (the placeholder, std's containers, the `same` check) would
    // come from the user's path, which could supply a `same` that checks
    // nothing: a recursive field then makes the type not structural (its
    // cycles are reported, not collected). Only `Trace` and `Structural`
    // are safe to take from that path: the trait's constant is typed by
    // the real `Structural<Self>`, so a substitute fails to compile.
    if model.attrs.krate.is_some() && (recursion.placed > 0 || !recursion.containers.is_empty()) {
        opaque = true;
    }
    let structural = if opaque {
        quote!(#krate::Structural::NO)
    } else {
        // SAFETY (of the generated `unsafe` block): the generated `trace`
        // matches on `self` and calls `trace` on each traced field, nothing
        // else, so it is structural when every field type's impl is; the
        // promise is combined with each field type's `STRUCTURAL`, asked
        // with the derived type assumed structural where it occurs inside
        // std's containers (the field type is checked to be the very type
        // asked about, with `Self` for the placeholder, by `same`), whose
        // impls are structural exactly when their elements' are (see
        // `ouro_refobj::__private`). The block keeps the call-site span, so
        // the `unsafe_code` lint of the user's crate, which does not report
        // code written by a macro of another crate, does not fire on it.
        let promise = quote!(unsafe { #krate::Structural::promise() });
        let containers = recursion.containers.iter().map(|(written, std)| {
            quote_spanned!(written.span()=> #krate::__private::same::<#written, #std>();)
        });
        quote!(
            #(#containers)*
            #promise #(#structural_terms)*
        )
    };
    let needs_trace = match &model.attrs.needs_trace {
        Some(value) => value.to_token_stream(),
        None => {
            let boxes = boxes.iter().map(|(written, std)| {
                quote_spanned!(written.span()=> #krate::__private::same::<#written, #std>();)
            });
            quote!(#(#boxes)* false #(|| #needs_trace_terms)*)
        }
    };
    // A type that asks its fields' types asks its own name first, so that
    // two types containing each other panic with their names (in debug
    // builds) instead of asking each other forever (see
    // `ouro::__private::asking`). Only with ouro's own `__private`: a crate
    // path's could not be trusted to be that function, and without it the
    // answer is the same.
    let asks = |terms: bool, needs: bool| {
        if terms && model.attrs.krate.is_none() {
            quote!(let _asking = #krate::__private::asking(::core::any::type_name::<Self>, #needs);)
        } else {
            quote!()
        }
    };
    let asking_needs = asks(
        model.attrs.needs_trace.is_none() && !needs_trace_terms.is_empty(),
        true,
    );
    let asking_structural = asks(!opaque && !structural_terms.is_empty(), false);
    let body = if model.is_enum && model.variants.is_empty() {
        quote!(match *self {})
    } else {
        quote!(match self { #(#arms)* })
    };

    // `#[trace(finalize)]` also goes through a helper, for the message.
    let finalize = model.attrs.finalize.map(|span| {
        let message = format!(
            "`{{Self}}` has `#[trace(finalize)]` but does not implement `{}::Finalize`",
            tidy_path(&krate)
        );
        helpers.push(quote! {
            #[diagnostic::on_unimplemented(
                message = #message,
                label = "this makes `Trace::finalize` call `Finalize::finalize`",
                note = "implement `Finalize` for `{Self}`, or remove `#[trace(finalize)]` to keep the default no-op finalizer",
            )]
            trait __OuroFinalize {
                fn finalize(&self);
            }

            impl<__OuroT: #krate::Finalize + ?::core::marker::Sized> __OuroFinalize for __OuroT {
                #[inline]
                fn finalize(&self) {
                    <__OuroT as #krate::Finalize>::finalize(self)
                }
            }
        });
        let helper = quote_spanned!(span=> __OuroFinalize);
        quote_spanned! {span=>
            #[inline]
            fn finalize(&self) {
                <Self as #helper>::finalize(self)
            }
        }
    });

    // Without `#[trace(finalize)]` the finalizer is the default no-op: say
    // so, and the collector skips finalization for this type.
    let has_finalizer = match finalize {
        Some(_) => quote!(),
        None => quote!(
            #[inline(always)]
            fn has_finalizer() -> bool {
                false
            }
        ),
    };

    Ok(quote! {
        const _: () = {
            #(#helpers)*

            #[automatically_derived]
            impl #impl_generics #trace_trait for #name #ty_generics #where_clause {
                #[inline(always)]
                fn needs_trace() -> bool {
                    #asking_needs
                    #needs_trace
                }
                #[inline(always)]
                fn structural() -> #krate::Structural<Self> {
                    #asking_structural
                    #structural
                }
                #has_finalizer

                #[inline]
                #[allow(unused_variables)]
                fn trace(&self, visitor: &mut #krate::Visitor<'_>) {
                    #body
                }

                #finalize
            }
        };
    })
}

/// Expands `#[derive(DeepCopy)]`.
pub(crate) fn deep_copy(input: &DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let model = read(input, Derive::DeepCopy, &mut errors);
    errors.finish()?;

    let krate = krate(&model.attrs);
    let copy_trait = quote!(#krate::DeepCopy);
    let generics = bounded_generics(input, &copy_trait);
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let name = &input.ident;

    // As for `Trace`: each deep-copied field goes through a helper trait
    // whose only purpose is an error message that names the field.
    let mut helpers = Vec::new();
    let mut arms = Vec::new();
    for variant in &model.variants {
        let owner = match variant.ident {
            Some(v) => format!("{name}::{v}"),
            None => name.to_string(),
        };
        let mut copies = Vec::new();
        for field in &variant.fields {
            let (ty, binding) = (field.ty, &field.binding);
            let copier = quote!(copier);
            let helper = format_ident!("__OuroCopyField{}", helpers.len());
            copies.push(match field.flag {
                Some(_) => {
                    let message = format!(
                        "field {} of `{owner}` is `#[deep_copy(shallow)]`, but its type `{{Self}}` does not implement `Clone`",
                        field.describe(),
                    );
                    helpers.push(quote! {
                        #[diagnostic::on_unimplemented(
                            message = #message,
                            label = "a shallow field is copied with `Clone::clone`",
                            note = "implement `Clone` for `{Self}`, or remove `#[deep_copy(shallow)]` to deep-copy the field",
                        )]
                        trait #helper {
                            fn clone(&self) -> Self;
                        }

                        impl<__OuroT: ::core::clone::Clone> #helper for __OuroT {
                            #[inline]
                            fn clone(&self) -> Self {
                                <__OuroT as ::core::clone::Clone>::clone(self)
                            }
                        }
                    });
                    quote_spanned!(ty.span()=> <#ty as #helper>::clone(#binding))
                }
                None => {
                    let message = format!(
                        "field {} of `{owner}` has type `{{Self}}`, which does not implement `{}::DeepCopy`",
                        field.describe(),
                        tidy_path(&krate),
                    );
                    helpers.push(quote! {
                        #[diagnostic::on_unimplemented(
                            message = #message,
                            label = "the type of a deep-copied field must implement `DeepCopy`",
                            note = "derive or implement `DeepCopy` for `{Self}`, or mark the field `#[deep_copy(shallow)]` to clone it instead",
                        )]
                        trait #helper {
                            fn deep_copy(&self, copier: &mut #krate::DeepCopier<'_>) -> Self;
                        }

                        impl<__OuroT: #copy_trait> #helper for __OuroT {
                            #[inline]
                            fn deep_copy(&self, copier: &mut #krate::DeepCopier<'_>) -> Self {
                                <__OuroT as #copy_trait>::deep_copy(self, copier)
                            }
                        }
                    });
                    quote_spanned!(ty.span()=> <#ty as #helper>::deep_copy(#binding, #copier))
                }
            });
        }
        let path = variant.path();
        let members: Vec<&Member> = variant.fields.iter().map(|f| &f.member).collect();
        let bindings = variant.fields.iter().map(|f| &f.binding);
        arms.push(quote! {
            #path { #(#members: #bindings,)* } => #path { #(#members: #copies,)* },
        });
    }
    let body = if model.is_enum && model.variants.is_empty() {
        quote!(match *self {})
    } else {
        quote!(match self { #(#arms)* })
    };

    Ok(quote! {
        const _: () = {
            #(#helpers)*

            #[automatically_derived]
            impl #impl_generics #copy_trait for #name #ty_generics #where_clause {
                #[allow(unused_variables)]
                fn deep_copy(&self, copier: &mut #krate::DeepCopier<'_>) -> Self {
                    #body
                }
            }
        };
    })
}

#[cfg(test)]
mod tests {
    //! Expansion tests: the exact impl generated for representative shapes.

    use super::*;
    use syn::parse_quote;

    /// Token streams as text without whitespace: `quote!` prints `>>` where
    /// a parsed type prints `> >`.
    fn text(tokens: impl ToTokens) -> String {
        tokens
            .to_token_stream()
            .to_string()
            .split_whitespace()
            .collect()
    }

    fn trace_of(input: DeriveInput) -> String {
        text(trace(&input).unwrap())
    }

    fn deep_copy_of(input: DeriveInput) -> String {
        text(deep_copy(&input).unwrap())
    }

    fn errors_of(result: syn::Result<TokenStream>) -> Vec<String> {
        result
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    /// The helper trait generated for one traced field.
    fn helper(index: usize, message: &str, krate: TokenStream) -> TokenStream {
        let helper = format_ident!("__OuroTraceField{}", index);
        quote! {
            #[diagnostic::on_unimplemented(
                message = #message,
                label = "the type of a traced field must implement `Trace`",
                note = "derive or implement `Trace` for `{Self}`, or mark the field `#[trace(skip)]` if it never holds a `Gc`",
            )]
            trait #helper {
                fn needs_trace() -> bool where Self: ::core::marker::Sized;
                fn structural() -> #krate::Structural<Self> where Self: ::core::marker::Sized;
                fn trace(&self, visitor: &mut #krate::Visitor<'_>);
            }

            impl<__OuroT: #krate::Trace + ?::core::marker::Sized> #helper for __OuroT {
                #[inline(always)]
                fn needs_trace() -> bool where Self: ::core::marker::Sized {
                    <__OuroT as #krate::Trace>::needs_trace()
                }
                #[inline(always)]
                fn structural() -> #krate::Structural<Self> where Self: ::core::marker::Sized {
                    <__OuroT as #krate::Trace>::structural()
                }
                #[inline]
                fn trace(&self, visitor: &mut #krate::Visitor<'_>) {
                    <__OuroT as #krate::Trace>::trace(self, visitor)
                }
            }
        }
    }

    #[test]
    fn generic_enum() {
        let got = trace_of(parse_quote! {
            enum Tree<'a, T: Clone, const N: usize> where T: Default {
                Empty,
                Leaf(T, #[trace(skip)] &'a str),
                Node { kids: [Gc<Tree<'a, T, N>>; N], label: String },
            }
        });
        let ouro = quote!(::ouro);
        let h0 = helper(
            0,
            "field `0` of `Tree::Leaf` has type `{Self}`, which does not implement `ouro::Trace`",
            ouro.clone(),
        );
        let h1 = helper(
            1,
            "field `kids` of `Tree::Node` has type `{Self}`, which does not implement `ouro::Trace`",
            ouro.clone(),
        );
        let h2 = helper(
            2,
            "field `label` of `Tree::Node` has type `{Self}`, which does not implement `ouro::Trace`",
            ouro,
        );
        let want = quote! {
                    const _: () = {
                        #h0 #h1 #h2

                        #[automatically_derived]
                        impl<'a, T: Clone, const N: usize> ::ouro::Trace for Tree<'a, T, N>
                        where T: Default, T: ::ouro::Trace
                        {
                            #[inline(always)]
        fn needs_trace() -> bool { let _asking = ::ouro::__private::asking(::core::any::type_name::<Self>, true); false
                                || <T as __OuroTraceField0>::needs_trace()
                                || true
                                || <String as __OuroTraceField2>::needs_trace() }
                            #[inline(always)]
        fn structural() -> ::ouro::Structural<Self> { let _asking = ::ouro::__private::asking(::core::any::type_name::<Self>, false); unsafe { ::ouro::Structural::promise() }
                                .and(<T as __OuroTraceField0>::structural())
                                .and(<[Gc<Tree<'a, T, N>>; N] as __OuroTraceField1>::structural())
                                .and(<String as __OuroTraceField2>::structural()) }
                            #[inline(always)]
        fn has_finalizer() -> bool { false }

                            #[inline]
                            #[allow(unused_variables)]
                            fn trace(&self, visitor: &mut ::ouro::Visitor<'_>) {
                                match self {
                                    Self::Empty { .. } => {}
                                    Self::Leaf { 0: __ouro_field_0, .. } => {
                                        if <T as __OuroTraceField0>::needs_trace() {
                                            <T as __OuroTraceField0>::trace(__ouro_field_0, visitor);
                                        }
                                    }
                                    Self::Node { kids: __ouro_field_0, label: __ouro_field_1, .. } => {
                                        if <[Gc<Tree<'a, T, N>>; N] as __OuroTraceField1>::needs_trace() {
                                            <[Gc<Tree<'a, T, N>>; N] as __OuroTraceField1>::trace(__ouro_field_0, visitor);
                                        }
                                        if <String as __OuroTraceField2>::needs_trace() {
                                            <String as __OuroTraceField2>::trace(__ouro_field_1, visitor);
                                        }
                                    }
                                }
                            }
                        }
                    };
                };
        assert_eq!(got, text(want));
    }

    #[test]
    fn tuple_struct_with_crate_and_finalize() {
        let got = trace_of(parse_quote! {
            #[trace(finalize, crate = "ouro_refobj")]
            struct Pair(Vec<u8>, #[trace(skip)] std::fs::File);
        });
        let h0 = helper(
            0,
            "field `0` of `Pair` has type `{Self}`, which does not implement `ouro_refobj::Trace`",
            quote!(ouro_refobj),
        );
        let finalize = quote! {
            #[diagnostic::on_unimplemented(
                message = "`{Self}` has `#[trace(finalize)]` but does not implement `ouro_refobj::Finalize`",
                label = "this makes `Trace::finalize` call `Finalize::finalize`",
                note = "implement `Finalize` for `{Self}`, or remove `#[trace(finalize)]` to keep the default no-op finalizer",
            )]
            trait __OuroFinalize {
                fn finalize(&self);
            }

            impl<__OuroT: ouro_refobj::Finalize + ?::core::marker::Sized> __OuroFinalize for __OuroT {
                #[inline]
                fn finalize(&self) {
                    <__OuroT as ouro_refobj::Finalize>::finalize(self)
                }
            }
        };
        let want = quote! {
                    const _: () = {
                        #h0
                        #finalize

                        #[automatically_derived]
                        impl ouro_refobj::Trace for Pair {
                            #[inline(always)]
        fn needs_trace() -> bool { false || <Vec<u8> as __OuroTraceField0>::needs_trace() }
                            #[inline(always)]
        fn structural() -> ouro_refobj::Structural<Self> { unsafe { ouro_refobj::Structural::promise() }
                                .and(<Vec<u8> as __OuroTraceField0>::structural()) }

                            #[inline]
                            #[allow(unused_variables)]
                            fn trace(&self, visitor: &mut ouro_refobj::Visitor<'_>) {
                                match self {
                                    Self { 0: __ouro_field_0, .. } => {
                                        if <Vec<u8> as __OuroTraceField0>::needs_trace() {
                                            <Vec<u8> as __OuroTraceField0>::trace(__ouro_field_0, visitor);
                                        }
                                    }
                                }
                            }

                            #[inline]
                            fn finalize(&self) {
                                <Self as __OuroFinalize>::finalize(self)
                            }
                        }
                    };
                };
        assert_eq!(got, text(want));
    }

    #[test]
    fn nested_containers_and_recursion() {
        let got = trace_of(parse_quote! {
            struct Doc {
                nodes: RefCell<HashMap<String, Vec<Option<Weak<Doc>>>>>,
                next: Option<Box<Self>>,
            }
        });
        let ouro = quote!(::ouro);
        let h0 = helper(
            0,
            "field `nodes` of `Doc` has type `{Self}`, which does not implement `ouro::Trace`",
            ouro.clone(),
        );
        let h1 = helper(
            1,
            "field `next` of `Doc` has type `{Self}`, which does not implement `ouro::Trace`",
            ouro,
        );
        let want = quote! {
                    const _: () = {
                        #h0 #h1

                        #[automatically_derived]
                        impl ::ouro::Trace for Doc {
                            #[inline(always)]
        fn needs_trace() -> bool { let _asking = ::ouro::__private::asking(::core::any::type_name::<Self>, true); false || true || true }
                            // The recursive field is asked of std's containers with
                            // the type replaced by the placeholder, and checked to be
                            // those containers; under the handle `Weak` the type is
                            // asked as written.
                            #[inline(always)]
        fn structural() -> ::ouro::Structural<Self> {
                                let _asking = ::ouro::__private::asking(::core::any::type_name::<Self>, false);
                                ::ouro::__private::same::<Box<Self>, ::ouro::__private::types::Box<Self> >();
                                ::ouro::__private::same::<
                                    Option<Box<Self>>,
                                    ::ouro::__private::types::Option<Box<Self>>
                                >();
                                unsafe { ::ouro::Structural::promise() }
                                    .and(<RefCell<HashMap<String, Vec<Option<Weak<Doc>>>>> as __OuroTraceField0>::structural())
                                    .and(<::ouro::__private::types::Option<
                                        ::ouro::__private::types::Box<::ouro::__private::Recursive>
                                    > as __OuroTraceField1>::structural())
                            }
                            #[inline(always)]
        fn has_finalizer() -> bool { false }

                            #[inline]
                            #[allow(unused_variables)]
                            fn trace(&self, visitor: &mut ::ouro::Visitor<'_>) {
                                match self {
                                    Self { nodes: __ouro_field_0, next: __ouro_field_1, .. } => {
                                        if <RefCell<HashMap<String, Vec<Option<Weak<Doc>>>>> as __OuroTraceField0>::needs_trace() {
                                            <RefCell<HashMap<String, Vec<Option<Weak<Doc>>>>> as __OuroTraceField0>::trace(
                                                __ouro_field_0, visitor
                                            );
                                        }
                                        if <Option<Box<Self>> as __OuroTraceField1>::needs_trace() {
                                            <Option<Box<Self>> as __OuroTraceField1>::trace(__ouro_field_1, visitor);
                                        }
                                    }
                                }
                            }
                        }
                    };
                };
        assert_eq!(got, text(want));
    }

    #[test]
    fn unit_struct_empty_enum_and_override() {
        let unit = trace_of(parse_quote!(
            struct Unit;
        ));
        assert!(unit.contains("fnneeds_trace()->bool{false}"), "{unit}");
        assert!(unit.contains("matchself{Self{..}=>{}}"), "{unit}");
        assert!(!unit.contains("__OuroTraceField"), "{unit}");

        let never = trace_of(parse_quote!(
            enum Never {}
        ));
        assert!(never.contains("match*self{}"), "{never}");

        let list = trace_of(parse_quote! {
            #[trace(needs_trace = false)]
            struct List { value: u32, next: Option<Box<List>> }
        });
        assert!(list.contains("fnneeds_trace()->bool{false}"), "{list}");
        assert!(
            list.contains("<Option<Box<List>>as__OuroTraceField1>::trace"),
            "{list}"
        );
    }

    #[test]
    fn deep_copy_shapes() {
        let got = deep_copy_of(parse_quote! {
            enum Value<T> {
                Nil,
                Pair(T, #[deep_copy(shallow)] Rc<str>),
                Named { head: Gc<Value<T>> },
            }
        });
        let helper = |index: usize, message: &str| {
            let helper = format_ident!("__OuroCopyField{}", index);
            quote! {
                #[diagnostic::on_unimplemented(
                    message = #message,
                    label = "the type of a deep-copied field must implement `DeepCopy`",
                    note = "derive or implement `DeepCopy` for `{Self}`, or mark the field `#[deep_copy(shallow)]` to clone it instead",
                )]
                trait #helper {
                    fn deep_copy(&self, copier: &mut ::ouro::DeepCopier<'_>) -> Self;
                }

                impl<__OuroT: ::ouro::DeepCopy> #helper for __OuroT {
                    #[inline]
                    fn deep_copy(&self, copier: &mut ::ouro::DeepCopier<'_>) -> Self {
                        <__OuroT as ::ouro::DeepCopy>::deep_copy(self, copier)
                    }
                }
            }
        };
        let h0 = helper(
            0,
            "field `0` of `Value::Pair` has type `{Self}`, which does not implement `ouro::DeepCopy`",
        );
        let h1 = quote! {
            #[diagnostic::on_unimplemented(
                message = "field `1` of `Value::Pair` is `#[deep_copy(shallow)]`, but its type `{Self}` does not implement `Clone`",
                label = "a shallow field is copied with `Clone::clone`",
                note = "implement `Clone` for `{Self}`, or remove `#[deep_copy(shallow)]` to deep-copy the field",
            )]
            trait __OuroCopyField1 {
                fn clone(&self) -> Self;
            }

            impl<__OuroT: ::core::clone::Clone> __OuroCopyField1 for __OuroT {
                #[inline]
                fn clone(&self) -> Self {
                    <__OuroT as ::core::clone::Clone>::clone(self)
                }
            }
        };
        let h2 = helper(
            2,
            "field `head` of `Value::Named` has type `{Self}`, which does not implement `ouro::DeepCopy`",
        );
        let want = quote! {
            const _: () = {
                #h0 #h1 #h2

                #[automatically_derived]
                impl<T> ::ouro::DeepCopy for Value<T> where T: ::ouro::DeepCopy {
                    #[allow(unused_variables)]
                    fn deep_copy(&self, copier: &mut ::ouro::DeepCopier<'_>) -> Self {
                        match self {
                            Self::Nil {} => Self::Nil {},
                            Self::Pair { 0: __ouro_field_0, 1: __ouro_field_1, } => Self::Pair {
                                0: <T as __OuroCopyField0>::deep_copy(__ouro_field_0, copier),
                                1: <Rc<str> as __OuroCopyField1>::clone(__ouro_field_1),
                            },
                            Self::Named { head: __ouro_field_0, } => Self::Named {
                                head: <Gc<Value<T>> as __OuroCopyField2>::deep_copy(__ouro_field_0, copier),
                            },
                        }
                    }
                }
            };
        };
        assert_eq!(got, text(want));
    }

    #[test]
    fn errors_are_collected() {
        let errors = errors_of(trace(&parse_quote! {
            #[trace(bogus)]
            struct S {
                #[trace(skip)]
                a: Option<Gc<S>>,
                #[trace(skip, finalize)]
                b: u8,
            }
        }));
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].starts_with("unknown attribute `bogus`"));
        assert!(errors[1].starts_with("`finalize` goes on the type"));
        assert!(errors[2].starts_with("field `a` holds a `Gc`"));
    }

    #[test]
    fn handle_detection() {
        let name: Ident = parse_quote!(Node);
        let handle = |ty: Type| Mentions::of(&ty, &name).handle;
        assert_eq!(
            handle(parse_quote!(Vec<(u8, [Option<ouro::Gc<u8>>; 3])>)),
            Some("Gc".into())
        );
        // Named only in a function signature: passed or returned, not held.
        assert_eq!(handle(parse_quote!(Box<dyn Fn(Weak<u8>) -> u8>)), None);
        assert_eq!(handle(parse_quote!(Box<dyn Fn(&[Gc<Node>], &Event)>)), None);
        assert_eq!(handle(parse_quote!(fn() -> Gc<u8>)), None);
        assert_eq!(
            handle(parse_quote!(Vec<(fn(&Gc<u8>), Gc<u8>)>)),
            Some("Gc".into())
        );
        assert_eq!(handle(parse_quote!(Box<dyn FnMut(u8) -> u8 + Send>)), None);
        // A handle in the callable's own type arguments is held.
        assert_eq!(
            handle(parse_quote!(Box<dyn Callback<Event, Gc<u8>>>)),
            Some("Gc".into())
        );
        assert_eq!(
            handle(parse_quote!(ouro::sync::Weak<u8>)),
            Some("Weak".into())
        );
        assert_eq!(handle(parse_quote!(std::rc::Weak<u8>)), None);
        assert_eq!(handle(parse_quote!(rc::Weak<u8>)), None);
        assert_eq!(handle(parse_quote!(alloc::sync::Weak<u8>)), None);
        assert_eq!(handle(parse_quote!(String)), None);
        let recursive = |ty: Type| Mentions::of(&ty, &name).recursive;
        assert!(recursive(parse_quote!(Option<Box<Node>>)));
        assert!(recursive(parse_quote!(Vec<Self>)));
        assert!(!recursive(parse_quote!(Vec<Nodes>)));
    }

    #[test]
    fn recursion_is_replaced_only_through_std_containers() {
        let plain: DeriveInput = parse_quote!(
            struct Node;
        );
        let generic: DeriveInput = parse_quote!(
            struct W<'a, T, const N: usize>(&'a [T; N]);
        );
        let shadowing: DeriveInput = parse_quote!(
            struct Node<Node>(Node);
        );
        // The type with the derived type replaced by `R`, and the number of
        // containers checked; `None` if it cannot be replaced.
        let read = |input: &DeriveInput, ty: Type| -> Option<(String, usize)> {
            let mut recursion = Recursion::new(input, &quote!(o));
            let out = recursion.substitute(&ty)?;
            let out = text(out)
                .replace("o::__private::Recursive", "R")
                .replace("o::__private::types::", "std::");
            Some((out, recursion.containers.len()))
        };
        let some = |ty: &str, checked: usize| Some((ty.to_owned(), checked));
        assert_eq!(
            read(&plain, parse_quote!(Option<Box<Self>>)),
            some("std::Option<std::Box<R>>", 2)
        );
        assert_eq!(
            read(&plain, parse_quote!(Vec<Node>)),
            some("std::Vec<R>", 1)
        );
        // `self::Node` is the module's item: another type inside a function.
        assert_eq!(read(&plain, parse_quote!(self::Node)), None);
        assert_eq!(
            read(
                &plain,
                parse_quote!(std::collections::HashMap<String, Self>)
            ),
            some("std::HashMap<String,R>", 1)
        );
        assert_eq!(
            read(&plain, parse_quote!([(Box<Self>, u8); 2])),
            some("[(std::Box<R>,u8);2]", 1)
        );
        // Under a handle (or anything whose impl ignores its argument) the
        // type is asked as written, and nothing is checked.
        assert_eq!(
            read(&plain, parse_quote!(RefCell<Vec<Gc<Self>>>)),
            some("RefCell<Vec<Gc<Self>>>", 0)
        );
        assert_eq!(
            read(&plain, parse_quote!((Locking<u8>, PhantomData<Self>))),
            some("(Locking<u8>,PhantomData<Self>)", 0)
        );
        // Everything else is not structural.
        let not_structural: [Type; 10] = [
            parse_quote!(Locking<Self>),
            parse_quote!(Vec<Locking<Node>>),
            parse_quote!(Self::Assoc),
            parse_quote!(Vec<<Self as Tr>::X>),
            parse_quote!(crate::Node),
            parse_quote!(mine::Box<Self>),
            parse_quote!(::Box<Self>),
            parse_quote!(&'static Self),
            parse_quote!([u8; core::mem::size_of::<Self>()]),
            parse_quote!(Box<dyn Fn(&Self)>),
        ];
        for ty in not_structural {
            assert_eq!(read(&plain, ty.clone()), None, "{}", text(&ty));
        }
        // Only the name with the type's own parameters is the type itself.
        assert_eq!(
            read(&generic, parse_quote!(Box<W<'a, T, N>>)),
            some("std::Box<R>", 1)
        );
        assert_eq!(read(&generic, parse_quote!(Box<W<'a, u8, N>>)), None);
        assert_eq!(read(&generic, parse_quote!(Box<W>)), None);
        assert_eq!(read(&shadowing, parse_quote!(Box<Node>)), None);
        assert_eq!(
            read(&shadowing, parse_quote!(Box<Self>)),
            some("std::Box<R>", 1)
        );
    }
}
