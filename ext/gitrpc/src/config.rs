//! A Ruby Hash → `gitrpc_server::Config`, through serde (no TOML text in between): Strings
//! and Symbols become strings, Integers, Floats, true/false and Arrays themselves, Hashes
//! tables (String or Symbol keys), objects with `#to_path` (Pathname) paths; a nil value
//! means "not given". The config's own rules then apply: an unknown key or a value of the
//! wrong type is an error naming it (`config: spool: unknown field `bogus`, ...`).
//! `lib/gitrpc/config.rb` turns the Ruby keywords (`storages:`, `listen:`) into this shape.

use gitrpc_client::embedded::StartError;
use gitrpc_server::Config;
use magnus::value::{Qfalse, Qtrue, ReprValue};
use magnus::{Error, Float, Integer, RArray, RHash, RString, Ruby, Symbol, Value};
use serde_json::{Map, Number, Value as Json};

/// The config a Hash describes; a `StartError::Config` naming the key if it is wrong.
pub fn from_hash(ruby: &Ruby, hash: RHash) -> Result<Result<Config, StartError>, Error> {
    let json = match table(ruby, hash, "") {
        Ok(j) => j,
        Err(Bad(msg)) => return Ok(Err(StartError::Config(msg))),
    };
    Ok(match serde_path_to_error::deserialize::<_, Config>(json) {
        Ok(c) => Ok(c),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            Err(StartError::Config(if path == "." {
                format!("config: {inner}")
            } else {
                format!("config: {path}: {inner}")
            }))
        }
    })
}

/// A value the config cannot hold, with a message naming where it is.
struct Bad(String);

impl From<Error> for Bad {
    fn from(e: Error) -> Bad {
        Bad(format!("config: {e}"))
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
                bad = Some(Bad(format!(
                    "config: {}: keys must be Strings or Symbols, not {}",
                    if path.is_empty() { "." } else { path },
                    k.inspect()
                )));
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
            .map_err(|_| Bad(format!("config: {path}: not valid UTF-8")));
    }
    if let Some(s) = Symbol::from_value(v) {
        return Ok(Json::String(s.name()?.into_owned()));
    }
    if let Some(i) = Integer::from_value(v) {
        return match (i.to_i64(), i.to_u64()) {
            (Ok(n), _) => Ok(Json::Number(n.into())),
            (_, Ok(n)) => Ok(Json::Number(n.into())),
            _ => Err(Bad(format!("config: {path}: {} is too large", v.inspect()))),
        };
    }
    if let Some(f) = Float::from_value(v) {
        return Number::from_f64(f.to_f64())
            .map(Json::Number)
            .ok_or_else(|| Bad(format!("config: {path}: {} is not finite", v.inspect())));
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
    Err(Bad(format!(
        "config: {path}: unsupported value {}",
        v.inspect()
    )))
}
