//! The code generated for a flow or a task.
//!
//! For a function `f`, three things coexist under its name: the orchestrated call `fn f`
//! (value namespace), the handles `mod f` (type namespace: `f::submit`, `f::body`, ...), and
//! the original function kept as a hidden `__weir_<kind>_body_f` in the user's scope. The
//! registration lives in an anonymous `const _` block in the user's scope, so option paths and
//! defaults resolve exactly as written.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, ExprPath, ItemFn, LitStr};

use crate::Kind;
use crate::options::{self, CachePolicy, Errors, Options, RunName};
use crate::signature::{self, Param, Return};

pub fn expand(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let options = options::parse(kind, attr, &mut errors);
    let mut func: ItemFn = match syn::parse2(item) {
        Ok(func) => func,
        Err(e) => {
            errors.push(syn::Error::new(
                e.span(),
                format!("{} applies to a function: {e}", kind.attr()),
            ));
            return errors.finish().unwrap_err().to_compile_error();
        }
    };
    let (params, ret) = signature::analyze(kind, &mut func, &mut errors);
    if let Err(errors) = errors.finish() {
        return errors.to_compile_error();
    }
    Generator {
        kind,
        options,
        func,
        params,
        ret,
    }
    .generate()
}

struct Generator {
    kind: Kind,
    options: Options,
    func: ItemFn,
    params: Vec<Param>,
    ret: Return,
}

fn doc_comment(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| {
            line.strip_prefix(' ')
                .unwrap_or(&line)
                .trim_end()
                .to_owned()
        })
        .collect();
    let text = lines.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn opt_str(value: Option<String>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

fn opt_f64(value: Option<f64>) -> TokenStream {
    match value {
        Some(value) => {
            let value = Literal::f64_suffixed(value);
            quote!(::core::option::Option::Some(#value))
        }
        None => quote!(::core::option::Option::None),
    }
}

/// A parameter's default as a value of its type: `Into::into(expr)`, except that a numeric
/// literal for a numeric type is cast, since `Into` would make an unsuffixed literal an `i32`
/// (and `u32: From<i32>` does not hold).
fn default_expr(ty: &syn::Type, expr: &syn::Expr) -> TokenStream {
    const NUMERIC: &[&str] = &[
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
        "f32", "f64",
    ];
    let numeric_type = matches!(ty, syn::Type::Path(p) if p.qself.is_none()
        && p.path.get_ident().is_some_and(|i| NUMERIC.contains(&i.to_string().as_str())));
    let mut literal = expr;
    if let syn::Expr::Unary(syn::ExprUnary {
        op: syn::UnOp::Neg(_),
        expr,
        ..
    }) = literal
    {
        literal = expr;
    }
    let numeric_literal = matches!(
        literal,
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(_) | syn::Lit::Float(_),
            ..
        })
    );
    if numeric_type && numeric_literal {
        quote!((#expr) as #ty)
    } else {
        quote!(::core::convert::Into::into(#expr))
    }
}

fn path_name(path: &ExprPath) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

impl Generator {
    fn generate(self) -> TokenStream {
        let ident = &self.func.sig.ident;
        let vis = &self.func.vis;
        let kind_name = match self.kind {
            Kind::Flow => "flow",
            Kind::Task => "task",
        };
        // As in Prefect, a flow's default name is its function's with dashes
        // (`my_flow` is "my-flow"); a task's keeps the function's name.
        let name = self
            .options
            .name
            .as_ref()
            .map(LitStr::value)
            .unwrap_or_else(|| match self.kind {
                Kind::Flow => ident.to_string().replace('_', "-"),
                Kind::Task => ident.to_string(),
            });
        let body_ident = format_ident!("__weir_{}_body_{}", kind_name, ident);
        let (doc_attrs, other_attrs): (Vec<&Attribute>, Vec<&Attribute>) = self
            .func
            .attrs
            .iter()
            .partition(|attr| attr.path().is_ident("doc"));

        // `#[cfg]`s go on every generated item, so that a configured-out function leaves nothing.
        let cfgs: Vec<&Attribute> = other_attrs
            .iter()
            .copied()
            .filter(|attr| attr.path().is_ident("cfg"))
            .collect();
        let names: Vec<&syn::Ident> = self.params.iter().map(|p| &p.ident).collect();
        let name_strs: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let typed: Vec<TokenStream> = self
            .params
            .iter()
            .map(|Param { ident, ty, .. }| quote!(#ident: #ty))
            .collect();
        // Orchestrated calls take values or upstream runs' results (`Input`).
        let inputs: Vec<TokenStream> = self
            .params
            .iter()
            .map(|Param { ident, ty, .. }| {
                quote!(#ident: impl ::core::convert::Into<::weir_sdk::Input<'__weir, #ty>>)
            })
            .collect();
        let tys: Vec<&syn::Type> = self.params.iter().map(|p| &p.ty).collect();
        let output = &self.ret.output;
        let user_ret = &self.func.sig.output;

        // The original function, unchanged but for its name and the `#[default]`s.
        let mut body_fn = self.func.clone();
        body_fn.sig.ident = body_ident.clone();
        body_fn.vis = syn::Visibility::Inherited;
        body_fn.attrs.retain(|attr| !attr.path().is_ident("doc"));

        let registration = self.registration(&name, &body_ident);
        let arguments = quote! {
            ::weir_sdk::__private::Arguments::new() #(.input(
                #name_strs,
                ::core::convert::Into::<::weir_sdk::Input<'_, #tys>>::into(#names),
            ))*
        };
        let values = quote! {
            ::weir_sdk::__private::Arguments::new() #(.arg(#name_strs, &#names))*
        };

        let (wrapper, handles) = match self.kind {
            Kind::Task => {
                let key_ident = format_ident!("__weir_task_cache_key_{}", ident);
                let key_fn = match &self.options.cache_key_fn {
                    Some(path) => quote_spanned! {path.span()=>
                        ::core::option::Option::Some(#path as ::weir_sdk::__private::CacheKeyFn)
                    },
                    None => quote!(::core::option::Option::None),
                };
                let map_params: Vec<TokenStream> = self
                    .params
                    .iter()
                    .map(|Param { ident, ty, .. }| {
                        quote!(#ident: impl ::core::convert::Into<::weir_sdk::MapArg<'__weir, #ty>>)
                    })
                    .collect();
                let map_arguments = quote! {
                    ::weir_sdk::__private::MapArguments::new()
                        #(.arg(#name_strs, ::core::convert::Into::into(#names)))*
                };
                let wrapper = quote! {
                    #(#doc_attrs)*
                    #(#other_attrs)*
                    #[allow(dead_code, clippy::too_many_arguments)]
                    #vis fn #ident(#(#typed),*) -> ::weir_sdk::Result<#output> {
                        #ident::call_state(#(#names),*).result()
                    }

                    #(#cfgs)*
                    #[doc(hidden)]
                    #[allow(non_upper_case_globals)]
                    const #key_ident: ::core::option::Option<::weir_sdk::__private::CacheKeyFn> = #key_fn;
                };
                let handles = quote! {
                    /// Runs the task function itself, without orchestration (Prefect's `task.fn`).
                    pub fn body(#(#typed),*) #user_ret {
                        super::#body_ident(#(#names),*)
                    }

                    /// Runs the task through the host and waits for its final state, which says
                    /// whether it failed (Prefect's `return_state=True`).
                    pub fn call_state<'__weir>(#(#inputs),*) -> ::weir_sdk::TaskState<#output> {
                        with(::weir_sdk::CallOptions::new()).call_state(#(#names),*)
                    }

                    /// Starts the task concurrently; wait for it with the returned future.
                    pub fn submit<'__weir>(#(#inputs),*) -> ::weir_sdk::TaskFuture<#output> {
                        with(::weir_sdk::CallOptions::new()).submit(#(#names),*)
                    }

                    /// Starts a background run of the task (Prefect's `task.delay()`): a
                    /// run of its own, outside this flow run, with the task's options, on
                    /// a server. Returns the new run's id at once.
                    pub fn delay(#(#typed),*) -> ::weir_sdk::Result<::std::string::String> {
                        ::weir_sdk::__private::delay_task(NAME, #values)
                    }

                    /// Starts one task run per element of the mapped arguments (`Vec`s);
                    /// `weir_sdk::unmapped(v)` repeats `v` for every run.
                    pub fn map<'__weir>(#(#map_params),*) -> ::std::vec::Vec<::weir_sdk::TaskFuture<#output>> {
                        with(::weir_sdk::CallOptions::new()).map(#(#names),*)
                    }

                    /// The task with call options (upstream runs to wait for, extra tags,
                    /// and any of its options replaced for these calls).
                    pub fn with(options: ::weir_sdk::CallOptions) -> WithOptions {
                        WithOptions { options }
                    }

                    /// The same as `with` (Prefect's `task.with_options(...)`).
                    pub fn with_options(options: ::weir_sdk::CallOptions) -> WithOptions {
                        WithOptions { options }
                    }

                    /// The task with call options, from `with`.
                    #[derive(Clone, Debug)]
                    pub struct WithOptions {
                        options: ::weir_sdk::CallOptions,
                    }

                    impl WithOptions {
                        /// Runs the task through the host and waits for its value.
                        pub fn call<'__weir>(&self, #(#inputs),*) -> ::weir_sdk::Result<#output> {
                            self.call_state(#(#names),*).result()
                        }

                        /// Runs the task through the host and waits for its final state.
                        pub fn call_state<'__weir>(&self, #(#inputs),*) -> ::weir_sdk::TaskState<#output> {
                            ::weir_sdk::__private::call_task(NAME, #arguments, &self.options, super::#key_ident)
                        }

                        /// Starts the task concurrently.
                        pub fn submit<'__weir>(&self, #(#inputs),*) -> ::weir_sdk::TaskFuture<#output> {
                            ::weir_sdk::__private::submit_task(NAME, #arguments, &self.options, super::#key_ident)
                        }

                        /// Starts one task run per element of the mapped arguments.
                        pub fn map<'__weir>(&self, #(#map_params),*) -> ::std::vec::Vec<::weir_sdk::TaskFuture<#output>> {
                            ::weir_sdk::__private::map_task(NAME, #map_arguments, &self.options, super::#key_ident)
                        }
                    }
                };
                (wrapper, handles)
            }
            Kind::Flow => {
                let wrapper = quote! {
                    #(#doc_attrs)*
                    #(#other_attrs)*
                    #[allow(dead_code, clippy::too_many_arguments)]
                    #vis fn #ident(#(#typed),*) -> ::weir_sdk::Result<#output> {
                        #[allow(unused_imports)]
                        use ::weir_sdk::__private::{DecodeOpaque as _, DecodeState as _, DecodeValue as _};
                        (&&::weir_sdk::__private::Decode::<#output>::new())
                            .__weir_decode(#ident::call_state(#(#names),*))
                    }
                };
                let handles = quote! {
                    /// Runs the flow function itself, without orchestration (Prefect's `flow.fn`).
                    pub fn body(#(#typed),*) #user_ret {
                        super::#body_ident(#(#names),*)
                    }

                    /// Runs the flow as a subflow and waits for its final state, which says
                    /// whether it failed (Prefect's `return_state=True`).
                    pub fn call_state<'__weir>(#(#inputs),*) -> ::weir_sdk::FlowState<#output> {
                        // Inside `mod f`, the module path is the function's path.
                        let id = ::weir_sdk::__private::flow_id(NAME, ::core::module_path!());
                        ::weir_sdk::__private::call_flow(id, #arguments)
                    }
                };
                (wrapper, handles)
            }
        };
        let mod_doc = format!(
            "Handles of the {kind_name} `{name}`: `body` and `call_state`{}.",
            if self.kind == Kind::Task {
                ", `submit`, `map`, `with`, `with_options`"
            } else {
                ""
            }
        );
        quote! {
            #wrapper

            #(#cfgs)*
            #[doc = #mod_doc]
            #[allow(dead_code, clippy::too_many_arguments)]
            #vis mod #ident {
                #[allow(unused_imports)]
                use super::*;

                /// The name the host knows it by.
                pub const NAME: &str = #name;

                #handles
            }

            #[doc(hidden)]
            #[allow(clippy::too_many_arguments)]
            #body_fn

            #(#cfgs)*
            #registration
        }
    }

    fn registration(&self, name: &str, body_ident: &syn::Ident) -> TokenStream {
        let function = self.func.sig.ident.to_string();
        let o = &self.options;
        let kind = match self.kind {
            Kind::Flow => quote!(Flow),
            Kind::Task => quote!(Task),
        };
        let description = opt_str(
            o.description
                .as_ref()
                .map(LitStr::value)
                .or_else(|| doc_comment(&self.func.attrs)),
        );
        let version = opt_str(o.version.as_ref().map(LitStr::value));

        let mut fields = Vec::new();
        if !o.tags.is_empty() {
            let tags = &o.tags;
            fields.push(quote!(tags: &[#(#tags),*]));
        }
        if let Some(retries) = o.retries {
            fields.push(quote!(retries: #retries));
        }
        if !o.retry_delay_seconds.is_empty() {
            let delays = o
                .retry_delay_seconds
                .iter()
                .map(|d| Literal::f64_suffixed(*d));
            fields.push(quote!(retry_delay_seconds: &[#(#delays),*]));
        }
        if o.retry_jitter_factor.is_some() {
            let v = opt_f64(o.retry_jitter_factor);
            fields.push(quote!(retry_jitter_factor: #v));
        }
        if o.timeout_seconds.is_some() {
            let v = opt_f64(o.timeout_seconds);
            fields.push(quote!(timeout_seconds: #v));
        }
        let policy = match (&o.cache_key_fn, &o.cache_policy) {
            (Some(_), _) => Some(quote!(Custom)),
            (None, Some((CachePolicy::Inputs, _))) => Some(quote!(Inputs)),
            (None, Some((CachePolicy::None, _))) | (None, None) => None,
        };
        if let Some(policy) = policy {
            fields.push(quote!(cache_policy: ::weir_sdk::__private::CachePolicy::#policy));
        }
        if o.cache_expiration.is_some() {
            let v = opt_f64(o.cache_expiration);
            fields.push(quote!(cache_expiration_seconds: #v));
        }
        if o.refresh_cache {
            fields.push(quote!(refresh_cache: true));
        }
        if let Some(persist) = o.persist_result {
            fields.push(quote!(persist_result: ::core::option::Option::Some(#persist)));
        }
        if let Some(log_prints) = o.log_prints {
            fields.push(quote!(log_prints: ::core::option::Option::Some(#log_prints)));
        }
        match &o.run_name {
            Some(RunName::Template(template)) => {
                fields.push(quote!(run_name_template: ::core::option::Option::Some(#template)));
            }
            Some(RunName::Fn(path)) => {
                fields.push(quote_spanned! {path.span()=>
                    run_name_fn: ::core::option::Option::Some(#path as fn() -> ::std::string::String)
                });
            }
            None => {}
        }
        if !o.on_running.is_empty() {
            let names = o.on_running.iter().map(path_name);
            fields.push(quote!(on_running: &[#(#names),*]));
        }
        if o.validate_parameters == Some(false) {
            fields.push(quote!(validate_parameters: false));
        }
        if let Some(n) = o.max_workers {
            fields.push(quote!(max_workers: ::core::option::Option::Some(#n)));
        }
        if !o.on_commit.is_empty() {
            let names = o.on_commit.iter().map(path_name);
            fields.push(quote!(on_commit: &[#(#names),*]));
        }
        if !o.on_rollback.is_empty() {
            let names = o.on_rollback.iter().map(path_name);
            fields.push(quote!(on_rollback: &[#(#names),*]));
        }
        if !o.on_completion.is_empty() {
            let names = o.on_completion.iter().map(path_name);
            fields.push(quote!(on_completion: &[#(#names),*]));
        }
        if !o.on_failure.is_empty() {
            let names = o.on_failure.iter().map(path_name);
            fields.push(quote!(on_failure: &[#(#names),*]));
        }
        if !o.on_cancellation.is_empty() {
            let names = o.on_cancellation.iter().map(path_name);
            fields.push(quote!(on_cancellation: &[#(#names),*]));
        }
        if !o.on_crashed.is_empty() {
            let names = o.on_crashed.iter().map(path_name);
            fields.push(quote!(on_crashed: &[#(#names),*]));
        }

        let retry_condition = match &o.retry_condition {
            Some(path) => quote_spanned! {path.span()=>
                ::core::option::Option::Some(#path as fn(&::weir_sdk::Error, u32) -> bool)
            },
            None => quote!(::core::option::Option::None),
        };

        // One arm per distinct hook, checked to have the hook signature.
        let mut hook_names: Vec<String> = Vec::new();
        let mut hook_arms = Vec::new();
        for path in o
            .on_completion
            .iter()
            .chain(&o.on_failure)
            .chain(&o.on_cancellation)
            .chain(&o.on_crashed)
            .chain(&o.on_running)
        {
            let hook_name = path_name(path);
            if hook_names.contains(&hook_name) {
                continue;
            }
            hook_names.push(hook_name.clone());
            let hook = quote_spanned! {path.span()=>
                let hook: fn(&::weir_sdk::HookContext) = #path;
            };
            hook_arms.push(quote! {
                #hook_name => {
                    #hook
                    hook(context);
                    true
                }
            });
        }

        // One arm per distinct transaction hook, checked to have its signature.
        let mut txn_hook_names: Vec<String> = Vec::new();
        let mut txn_hook_arms = Vec::new();
        for path in o.on_commit.iter().chain(&o.on_rollback) {
            let hook_name = path_name(path);
            if txn_hook_names.contains(&hook_name) {
                continue;
            }
            txn_hook_names.push(hook_name.clone());
            let hook = quote_spanned! {path.span()=>
                let hook: fn(&::weir_sdk::TransactionContext) -> ::weir_sdk::Result<()> = #path;
            };
            txn_hook_arms.push(quote! {
                #hook_name => {
                    #hook
                    ::core::option::Option::Some(hook(context))
                }
            });
        }

        // Decoding each parameter from the JSON object.
        let decode: Vec<TokenStream> = self
            .params
            .iter()
            .map(|Param { ident, ty, default, .. }| {
                let key = ident.to_string();
                match default {
                    Some(expr) => {
                        let value = default_expr(ty, expr);
                        quote! {
                            let #ident: #ty = __weir_arguments.or_default(#key, || -> #ty { #value })?;
                        }
                    }
                    None => quote! {
                        let #ident: #ty = __weir_arguments.required(#key)?;
                    },
                }
            })
            .collect();
        let schema_params: Vec<TokenStream> = self
            .params
            .iter()
            .map(|Param { ident, ty, default, optional }| {
                let key = ident.to_string();
                let required = default.is_none() && !optional;
                let default = match default {
                    Some(expr) => {
                        let value = default_expr(ty, expr);
                        quote! {
                            ::core::option::Option::Some(::weir_sdk::__private::default_value::<#ty>(#value))
                        }
                    }
                    None => quote!(::core::option::Option::None),
                };
                quote!(schema.param::<#ty>(#key, #required, #default);)
            })
            .collect();
        let names: Vec<&syn::Ident> = self.params.iter().map(|p| &p.ident).collect();

        let value = if self.ret.is_result {
            quote! {
                let __weir_value = match __weir_value {
                    ::core::result::Result::Ok(value) => value,
                    ::core::result::Result::Err(error) => {
                        #[allow(unused_imports)]
                        use ::weir_sdk::__private::{ErrorDisplay as _, ErrorExact as _};
                        return ::core::result::Result::Err(
                            ::weir_sdk::__private::ReturnedError(error).__weir_error()
                        );
                    }
                };
            }
        } else {
            TokenStream::new()
        };
        let output = match self.kind {
            Kind::Task => quote!(::weir_sdk::__private::task_output(&__weir_value)),
            Kind::Flow => quote! {
                #[allow(unused_imports)]
                use ::weir_sdk::__private::{ReturnState as _, ReturnValue as _};
                ::weir_sdk::__private::Returned(__weir_value).__weir_output()
            },
        };
        let span = Span::call_site();
        quote_spanned! {span=>
            #[allow(non_snake_case, clippy::too_many_arguments)]
            const _: () = {
                fn __weir_run(__weir_text: &str) -> ::weir_sdk::__private::RunResult {
                    #[allow(unused_mut, unused_variables)]
                    let mut __weir_arguments = ::weir_sdk::__private::ParsedArguments::parse(__weir_text)?;
                    #(#decode)*
                    #[allow(clippy::let_unit_value)]
                    let __weir_value = #body_ident(#(#names),*);
                    #value
                    #output
                }

                fn __weir_schema() -> ::weir_sdk::__private::serde_json::Value {
                    #[allow(unused_mut)]
                    let mut schema = ::weir_sdk::__private::ParametersSchema::new();
                    #(#schema_params)*
                    schema.finish()
                }

                fn __weir_run_hook(hook: &str, context: &::weir_sdk::HookContext) -> bool {
                    let _ = context;
                    match hook {
                        #(#hook_arms)*
                        _ => false,
                    }
                }

                fn __weir_run_transaction_hook(
                    hook: &str,
                    context: &::weir_sdk::TransactionContext,
                ) -> ::core::option::Option<::weir_sdk::Result<()>> {
                    let _ = context;
                    match hook {
                        #(#txn_hook_arms)*
                        _ => ::core::option::Option::None,
                    }
                }

                ::weir_sdk::__private::inventory::submit! {
                    ::weir_sdk::__private::Registration {
                        kind: ::weir_sdk::RunKind::#kind,
                        name: #name,
                        function: ::core::concat!(::core::module_path!(), "::", #function),
                        description: #description,
                        version: #version,
                        options: ::weir_sdk::__private::Options {
                            #(#fields,)*
                            ..::weir_sdk::__private::Options::DEFAULT
                        },
                        parameters_schema: __weir_schema,
                        run: __weir_run,
                        retry_condition: #retry_condition,
                        run_hook: __weir_run_hook,
                        run_transaction_hook: __weir_run_transaction_hook,
                    }
                }
            };
        }
    }
}
