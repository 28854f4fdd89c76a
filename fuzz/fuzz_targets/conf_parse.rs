//! Fuzz target for the configuration parser: arbitrary bytes, read as lossy
//! UTF-8, must never panic, hang or overflow the stack. Includes are
//! disabled and every `$VARIABLE` not defined in the text resolves to a fixed
//! value taken from the input itself, so environment-variable parsing (and
//! its cycle detection) is exercised without touching the real environment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rnats_conf::{Parser, Value};

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    // The first line doubles as the value of every environment variable.
    let env_value: String = src.lines().next().unwrap_or("").chars().take(64).collect();
    let parser = Parser::new()
        .disable_includes()
        .env(move |_| Some(env_value.clone()));
    if let Ok(map) = parser.parse_str(&src) {
        // Walk the result and use every accessor: none may panic.
        for (_, entry) in map.iter() {
            touch(&entry.value.value);
            let v = &entry.value;
            let _ = (v.as_str(), v.as_int(), v.as_bool(), v.as_float());
            let _ = (v.as_duration(), v.as_size(), v.as_datetime());
        }
    }
});

fn touch(v: &Value) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| touch(&i.value)),
        Value::Map(m) => m.iter().for_each(|(_, e)| touch(&e.value.value)),
        Value::DateTime(d) => {
            let _ = d.unix_seconds();
        }
        _ => {}
    }
}
