//! Checks the marked function and reads its parameters and return type.

use syn::spanned::Spanned;
use syn::{Attribute, Expr, FnArg, GenericArgument, ItemFn, Pat, PathArguments, ReturnType, Type};

use crate::Kind;
use crate::options::Errors;

/// A parameter: a name (its JSON key) and an owned type.
pub struct Param {
    pub ident: syn::Ident,
    pub ty: Type,
    pub default: Option<Expr>,
    /// An `Option<T>`: not required.
    pub optional: bool,
}

/// What the function returns.
pub struct Return {
    /// The value type (`T` of `-> T` or `-> Result<T, E>`; `()` without a return type).
    pub output: Type,
    /// Whether it returns a `Result` (detected by the last path segment).
    pub is_result: bool,
}

/// Checks the function, strips `#[default(..)]` from its parameters, and reads the signature.
pub fn analyze(kind: Kind, func: &mut ItemFn, errors: &mut Errors) -> (Vec<Param>, Return) {
    let attr = kind.attr();
    let sig = &func.sig;
    if let Some(token) = &sig.asyncness {
        errors.push(syn::Error::new(
            token.span(),
            format!(
                "{attr} functions cannot be async; run tasks concurrently with `submit` or `map`"
            ),
        ));
    }
    if let Some(token) = &sig.constness {
        errors.push(syn::Error::new(
            token.span(),
            format!("{attr} functions cannot be const"),
        ));
    }
    if let Some(token) = &sig.unsafety {
        errors.push(syn::Error::new(
            token.span(),
            format!("{attr} functions cannot be unsafe"),
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new(
            abi.span(),
            format!("{attr} functions cannot have an ABI"),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new(
            variadic.span(),
            format!("{attr} functions cannot be variadic"),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new(
            sig.generics.span(),
            format!("{attr} functions cannot be generic: the host calls them by name with JSON parameters, so every type must be concrete"),
        ));
    }

    let mut params = Vec::new();
    for input in &mut func.sig.inputs {
        let arg = match input {
            FnArg::Receiver(receiver) => {
                errors.push(syn::Error::new(
                    receiver.span(),
                    format!("{attr} cannot take `self`: mark a free function"),
                ));
                continue;
            }
            FnArg::Typed(arg) => arg,
        };
        let default = take_default(&mut arg.attrs, errors);
        let ident = match &*arg.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.clone(),
            pat => {
                errors.push(syn::Error::new(
                    pat.span(),
                    format!("{attr} parameters must be plain names (`x: T`): the name is the parameter's key in the JSON parameters"),
                ));
                continue;
            }
        };
        if let Err(e) = check_type(attr, &arg.ty, "parameters") {
            errors.push(e);
            continue;
        }
        params.push(Param {
            ident,
            ty: (*arg.ty).clone(),
            default,
            optional: last_segment_is(&arg.ty, "Option"),
        });
    }

    let ret = match &func.sig.output {
        ReturnType::Default => Return {
            output: syn::parse_quote!(()),
            is_result: false,
        },
        ReturnType::Type(_, ty) => {
            if let Err(e) = check_type(attr, ty, "return types") {
                errors.push(e);
            }
            match result_ok_type(ty) {
                Some(output) => Return {
                    output,
                    is_result: true,
                },
                None => Return {
                    output: (**ty).clone(),
                    is_result: false,
                },
            }
        }
    };
    (params, ret)
}

/// Removes `#[default(expr)]` from a parameter's attributes and returns the expression.
fn take_default(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> Option<Expr> {
    let mut default = None;
    let mut kept = Vec::new();
    for attr in attrs.drain(..) {
        if !attr.path().is_ident("default") {
            kept.push(attr);
            continue;
        }
        if default.is_some() {
            errors.push(syn::Error::new(attr.span(), "duplicate `#[default(..)]`"));
            continue;
        }
        match attr.parse_args::<Expr>() {
            Ok(expr) => default = Some(expr),
            Err(_) => errors.push(syn::Error::new(
                attr.span(),
                "`#[default]` needs a value: `#[default(expr)]`",
            )),
        }
    }
    *attrs = kept;
    default
}

/// Parameters and results cross the sandbox boundary as JSON: no borrowed or opaque types.
fn check_type(attr: &str, ty: &Type, what: &str) -> syn::Result<()> {
    match ty {
        Type::Reference(_) => Err(syn::Error::new(
            ty.span(),
            format!(
                "{attr} {what} cross the sandbox boundary as JSON, so they must be owned: use an owned type (`String` for `&str`, `Vec<T>` for `&[T]`)"
            ),
        )),
        Type::ImplTrait(_) => Err(syn::Error::new(
            ty.span(),
            format!("{attr} {what} must be concrete types, not `impl Trait`"),
        )),
        Type::Path(path) => {
            for segment in &path.path.segments {
                if let PathArguments::AngleBracketed(args) = &segment.arguments {
                    for arg in &args.args {
                        if let GenericArgument::Type(inner) = arg {
                            check_type(attr, inner, what)?;
                        }
                    }
                }
            }
            Ok(())
        }
        Type::Tuple(tuple) => tuple
            .elems
            .iter()
            .try_for_each(|t| check_type(attr, t, what)),
        Type::Array(array) => check_type(attr, &array.elem, what),
        Type::Paren(paren) => check_type(attr, &paren.elem, what),
        Type::Group(group) => check_type(attr, &group.elem, what),
        _ => Ok(()),
    }
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(path) => {
            path.qself.is_none() && path.path.segments.last().is_some_and(|s| s.ident == name)
        }
        Type::Group(group) => last_segment_is(&group.elem, name),
        Type::Paren(paren) => last_segment_is(&paren.elem, name),
        _ => false,
    }
}

/// `T` of `Result<T, E>` (or of a one-argument alias such as `weir_sdk::Result<T>`).
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    args.args.iter().find_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty.clone()),
        _ => None,
    })
}
