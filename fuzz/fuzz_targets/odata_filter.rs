//! The hub's OData filter parser (REST `filter=`), reached through the `fuzzing` feature.
//!
//! Checks beyond "no panic", for every filter that parses:
//! - writing it back as OData and parsing that gives the same filter;
//! - `not (<filter>)` parses (when within the nesting limit) and selects exactly the
//!   connections the filter does not, for a connection built from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webpubsub_fleet::hub::filter_fuzzing::{Probe, parse};

// The input is text: the filter, optionally followed by NUL-separated fields of the
// connection it is tried on: connection id, user id (empty: none), then its groups. So seeds
// are plain filters.
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut fields = text.split('\0');
    let Ok(filter) = parse(fields.next().unwrap_or_default()) else {
        return;
    };
    let printed = filter.to_odata();
    // The printer writes canonical spacing and quoting, which can push a filter near the
    // parser's length limit over it; that is the limit working, not a printer bug.
    if printed.len() > 4096 {
        return;
    }
    let again = parse(&printed)
        .unwrap_or_else(|e| panic!("the printed filter does not parse: {e}\n{printed}"));
    assert_eq!(
        again, filter,
        "printing and parsing changes the filter\n{printed}"
    );

    let probe = Probe {
        connection_id: fields.next().unwrap_or("c1").to_owned(),
        user_id: Some(fields.next().unwrap_or("user1"))
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
        groups: fields.map(str::to_owned).collect(),
    };
    let selected = filter.matches(&probe);
    if let Ok(negated) = parse(&format!("not ({printed})")) {
        assert_eq!(negated.matches(&probe), !selected, "not ({printed})");
    }
});
