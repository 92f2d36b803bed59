//! A Ruby Hash → `gitrpc_server::Config`, through serde (no TOML text in between): Strings
//! and Symbols become strings, Integers, Floats, true/false and Arrays themselves, Hashes
//! tables (String or Symbol keys), objects with `#to_path` (Pathname) paths; a nil value
//! means "not given". The config's own rules then apply: an unknown key or a value of the
//! wrong type is an error naming it (`config: spool: unknown field `bogus`, ...`).
//! `lib/gitrpc/config.rb` turns the Ruby keywords (`storages:`, `listen:`) into this shape.

use gitrpc_server::{Config, ConfigError};
use magnus::value::{Qfalse, Qtrue, ReprValue};
use magnus::{Error, Float, Integer, RArray, RHash, RString, Ruby, Symbol, Value};
use serde_json::{Map, Number, Value as Json};

/// The config a Hash describes; a `ConfigError` naming the key if it is wrong (not yet
/// validated: `Config::validate` or starting a server does that).
pub fn from_hash(ruby: &Ruby, hash: RHash) -> Result<Result<Config, ConfigError>, Error> {
    let json = match table(ruby, hash, "") {
        Ok(j) => j,
        Err(Bad { key, message }) => {
            return Ok(Err(ConfigError::Parse {
                key,
                line: None,
                message,
            }))
        }
    };
    Ok(match serde_path_to_error::deserialize::<_, Config>(json) {
        Ok(c) => Ok(c),
        Err(e) => {
            let path = e.path().to_string();
            Err(ConfigError::Parse {
                key: if path == "." { String::new() } else { path },
                line: None,
                message: e.into_inner().to_string(),
            })
        }
    })
}

/// A value the config cannot hold: where it is (empty: the top) and what is wrong.
struct Bad {
    key: String,
    message: String,
}

impl Bad {
    fn at(key: &str, message: String) -> Bad {
        Bad {
            key: key.to_string(),
            message,
        }
    }
}

impl From<Error> for Bad {
    fn from(e: Error) -> Bad {
        Bad::at("", e.to_string())
    }
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn table(ruby: &Ruby, hash: RHash, path: &str) -> Result<Json, Bad> {
    let mut out = Map::new();
    let mut bad = None;
    hash.foreach(|k: Value, v: Value| {
        let key = match key(k) {
            Some(k) => k,
            None => {
                bad = Some(Bad::at(
                    path,
                    format!("keys must be Strings or Symbols, not {}", k.inspect()),
                ));
                return Ok(magnus::r_hash::ForEach::Stop);
            }
        };
        if v.is_nil() {
            return Ok(magnus::r_hash::ForEach::Continue);
        }
        match value(ruby, v, &at(path, &key)) {
            Ok(j) => {
                out.insert(key, j);
                Ok(magnus::r_hash::ForEach::Continue)
            }
            Err(e) => {
                bad = Some(e);
                Ok(magnus::r_hash::ForEach::Stop)
            }
        }
    })?;
    match bad {
        Some(e) => Err(e),
        None => Ok(Json::Object(out)),
    }
}

fn key(k: Value) -> Option<String> {
    if let Some(s) = Symbol::from_value(k) {
        return s.name().ok().map(|n| n.into_owned());
    }
    RString::from_value(k).and_then(|s| s.to_string().ok())
}

fn value(ruby: &Ruby, v: Value, path: &str) -> Result<Json, Bad> {
    if Qtrue::from_value(v).is_some() {
        return Ok(Json::Bool(true));
    }
    if Qfalse::from_value(v).is_some() {
        return Ok(Json::Bool(false));
    }
    if v.is_nil() {
        return Ok(Json::Null);
    }
    if let Some(s) = RString::from_value(v) {
        return s
            .to_string()
            .map(Json::String)
            .map_err(|_| Bad::at(path, "not valid UTF-8".to_string()));
    }
    if let Some(s) = Symbol::from_value(v) {
        return Ok(Json::String(s.name()?.into_owned()));
    }
    if let Some(i) = Integer::from_value(v) {
        return match (i.to_i64(), i.to_u64()) {
            (Ok(n), _) => Ok(Json::Number(n.into())),
            (_, Ok(n)) => Ok(Json::Number(n.into())),
            _ => Err(Bad::at(path, format!("{} is too large", v.inspect()))),
        };
    }
    if let Some(f) = Float::from_value(v) {
        return Number::from_f64(f.to_f64())
            .map(Json::Number)
            .ok_or_else(|| Bad::at(path, format!("{} is not finite", v.inspect())));
    }
    if let Some(a) = RArray::from_value(v) {
        // By index, so every element stays referenced by the Array while we convert.
        let mut items = Vec::with_capacity(a.len());
        let mut i = 0;
        while i < a.len() {
            let item: Value = a.entry(i as isize)?;
            items.push(value(ruby, item, &format!("{path}[{i}]"))?);
            i += 1;
        }
        return Ok(Json::Array(items));
    }
    if let Some(h) = RHash::from_value(v) {
        return table(ruby, h, path);
    }
    if v.respond_to("to_path", false)? {
        let p: RString = v.funcall("to_path", ())?;
        return value(ruby, p.as_value(), path);
    }
    Err(Bad::at(path, format!("unsupported value {}", v.inspect())))
}
