//! Run names: generated two-word names (Prefect's "adept-capuchin") and templates
//! over parameters ("add-{x}-{y}").

use rand::Rng;
use serde_json::Value;

const ADJECTIVES: &[&str] = &[
    "adept",
    "agile",
    "amber",
    "ancient",
    "arctic",
    "bold",
    "brave",
    "bright",
    "brisk",
    "calm",
    "candid",
    "clever",
    "cosmic",
    "crimson",
    "curious",
    "daring",
    "dapper",
    "eager",
    "electric",
    "elegant",
    "fancy",
    "fearless",
    "festive",
    "fiery",
    "gentle",
    "giant",
    "glossy",
    "golden",
    "graceful",
    "happy",
    "hearty",
    "humble",
    "icy",
    "jolly",
    "keen",
    "kind",
    "lively",
    "lucky",
    "lunar",
    "magic",
    "mellow",
    "merry",
    "mighty",
    "misty",
    "nimble",
    "noble",
    "olive",
    "patient",
    "placid",
    "polite",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "rustic",
    "sandy",
    "savvy",
    "shiny",
    "silent",
    "silver",
    "smart",
    "snowy",
    "solar",
    "spry",
    "steady",
    "stellar",
    "sturdy",
    "swift",
    "tidy",
    "tranquil",
    "upbeat",
    "valiant",
    "vivid",
    "wandering",
    "warm",
    "wise",
    "witty",
    "zealous",
    "zesty",
];

const ANIMALS: &[&str] = &[
    "albatross",
    "alpaca",
    "antelope",
    "armadillo",
    "badger",
    "beaver",
    "bison",
    "bobcat",
    "buffalo",
    "camel",
    "capuchin",
    "caribou",
    "cheetah",
    "chipmunk",
    "cobra",
    "condor",
    "cougar",
    "coyote",
    "crane",
    "dingo",
    "dolphin",
    "eagle",
    "falcon",
    "ferret",
    "finch",
    "flamingo",
    "fox",
    "gazelle",
    "gecko",
    "gibbon",
    "giraffe",
    "gopher",
    "hare",
    "hedgehog",
    "heron",
    "ibex",
    "iguana",
    "impala",
    "jackal",
    "jaguar",
    "kestrel",
    "koala",
    "lemur",
    "leopard",
    "lynx",
    "marmot",
    "meerkat",
    "mongoose",
    "moose",
    "narwhal",
    "ocelot",
    "octopus",
    "orca",
    "otter",
    "owl",
    "panda",
    "panther",
    "pelican",
    "penguin",
    "puffin",
    "quail",
    "raccoon",
    "raven",
    "salamander",
    "seal",
    "sparrow",
    "squid",
    "stork",
    "tapir",
    "tiger",
    "toucan",
    "turtle",
    "vulture",
    "walrus",
    "weasel",
    "wolf",
    "wombat",
    "yak",
    "zebra",
];

/// A random two-word name such as "adept-capuchin".
pub fn generate() -> String {
    let mut rng = rand::rng();
    format!(
        "{}-{}",
        ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
        ANIMALS[rng.random_range(0..ANIMALS.len())]
    )
}

/// Fills `{name}` (or `{name.field}`) placeholders from the parameters. Strings are
/// inserted bare, other values as JSON; unknown placeholders are left as written.
pub fn render(template: &str, params: &Value) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let key = &after[..close];
                match lookup(params, key) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(v) => out.push_str(&v.to_string()),
                    None => {
                        out.push('{');
                        out.push_str(key);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn lookup<'a>(params: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = params;
    for part in path.split('.') {
        v = v.get(part.trim())?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generated_names_have_two_words() {
        let n = generate();
        let parts: Vec<_> = n.split('-').collect();
        assert_eq!(parts.len(), 2, "{n}");
        assert!(ADJECTIVES.contains(&parts[0]) && ANIMALS.contains(&parts[1]));
    }

    #[test]
    fn templates_fill_parameters() {
        let p = json!({"x": 1, "name": "ada", "cfg": {"env": "prod"}});
        assert_eq!(render("add-{x}-{name}", &p), "add-1-ada");
        assert_eq!(render("{cfg.env}/{missing}", &p), "prod/{missing}");
        assert_eq!(render("open {brace", &p), "open {brace");
    }
}
