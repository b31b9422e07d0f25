//! A component that is not a Weir flow component.

wit_bindgen::generate!({
    inline: "package test:other; world other { export greet: func() -> string; }",
});

struct Other;

impl Guest for Other {
    fn greet() -> String {
        "hello from another world".into()
    }
}

export!(Other);
