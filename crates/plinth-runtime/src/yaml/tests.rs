use std::time::Duration;

use super::*;

/// Reads `text` as `f.yaml` with `read` on each document's root, returning the displayed errors.
fn errors_of(text: &str, read: impl Fn(&mut Reader, &Node)) -> Vec<String> {
    let mut reader = Reader::new("f.yaml", text);
    for document in reader.documents() {
        read(&mut reader, &document.root);
    }
    reader
        .into_errors()
        .iter()
        .map(ToString::to_string)
        .collect()
}

const KEYS: &[&str] = &["name", "schedule", "retries", "tasks"];

#[test]
fn a_syntax_error_names_the_place() {
    let errors = errors_of("name: [a\n", |_, _| {});
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("f.yaml:2:1: invalid YAML"),
        "{errors:?}"
    );
    assert!(errors[0].ends_with("fix the syntax"), "{errors:?}");
}

#[test]
fn documents_keep_their_own_text_and_skip_empty_ones() {
    let text = "# first\nname: a\n---\n---\nname: b\nretries: 1\n...\n";
    let mut reader = Reader::new("f.yaml", text);
    let documents = reader.documents();
    assert_eq!(documents.len(), 2);
    assert_eq!(documents[0].text, "# first\nname: a\n");
    assert_eq!(documents[1].text, "name: b\nretries: 1\n");
    assert_eq!(
        reader.location(&documents[1].root).to_string(),
        "f.yaml:5:1"
    );
    assert!(reader.into_errors().is_empty());
}

#[test]
fn unknown_keys_name_the_nearest_valid_one() {
    let errors = errors_of("name: a\nschedul: x\nzzz: 1\n", |reader, root| {
        let fields = reader.mapping(root, "a pipeline", KEYS).unwrap();
        assert_eq!(
            fields.get("name").and_then(scalar_text).as_deref(),
            Some("a")
        );
        assert!(fields.get("schedul").is_none());
    });
    assert_eq!(
        errors,
        [
            "f.yaml:2:1: unknown key `schedul` in a pipeline; did you mean `schedule`? valid keys are name, schedule, retries, tasks",
            "f.yaml:3:1: unknown key `zzz` in a pipeline; valid keys are name, schedule, retries, tasks",
        ]
    );
}

#[test]
fn a_repeated_key_is_refused_but_colons_elsewhere_are_not() {
    let errors = errors_of("name: a\nretries: 1\nname: b # again\n", |reader, root| {
        reader.mapping(root, "a pipeline", KEYS);
    });
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("f.yaml:1:1: key `name` appears more than once in a pipeline"));
    let fine = "name: a   # name: no\nschedule: 'x: y'\nretries:\ntasks: {a: 1}\n";
    assert!(
        errors_of(fine, |reader, root| {
            reader.mapping(root, "a pipeline", KEYS);
        })
        .is_empty()
    );
}

#[test]
fn a_missing_required_field_shows_how_to_add_it() {
    let errors = errors_of("retries: 1\nname: ~\n", |reader, root| {
        let fields = reader.mapping(root, "a pipeline", KEYS).unwrap();
        assert!(fields.contains("name"));
        assert!(reader.required(&fields, "name", "my_pipeline").is_none());
        let fields = fields.described("pipeline `x`");
        assert!(reader.required(&fields, "tasks", "{}").is_none());
    });
    assert_eq!(
        errors,
        [
            "f.yaml:1:1: a pipeline is missing the required field `name`; add `name: my_pipeline`",
            "f.yaml:1:1: pipeline `x` is missing the required field `tasks`; add `tasks: {}`",
        ]
    );
}

#[test]
fn scalars_are_read_by_type_with_what_was_expected() {
    let text = "a: text\nb: 3\nc: -2\nd: 0.5\ne: true\nf: [x, 1]\ng: {k: v, n: 2}\nh: ''\n";
    let errors = errors_of(text, |reader, root| {
        let fields = reader.entries(root, "f").unwrap();
        let value = |key: &str| fields.iter().find(|(name, _, _)| name == key).unwrap().2;
        assert_eq!(reader.text(value("a"), "a").as_deref(), Some("text"));
        assert_eq!(reader.text(value("b"), "b"), None);
        assert_eq!(reader.label(value("b"), "b"), "3");
        assert_eq!(reader.integer(value("c"), "c"), Some(-2));
        assert_eq!(reader.integer_in(value("c"), "c", 0, 10), None);
        assert_eq!(reader.integer(value("d"), "d"), None);
        assert_eq!(reader.number(value("d"), "d"), Some(0.5));
        assert_eq!(reader.number(value("b"), "b"), Some(3.0));
        assert_eq!(reader.boolean(value("e"), "e"), Some(true));
        assert_eq!(reader.boolean(value("a"), "a"), None);
        assert_eq!(reader.labels(value("f"), "f"), ["x", "1"]);
        assert_eq!(reader.sequence(value("a"), "a"), None);
        let map = reader.string_map(value("g"), "g");
        assert_eq!(map.get("n").map(String::as_str), Some("2"));
        assert_eq!(reader.text(value("h"), "h"), None);
    });
    assert_eq!(
        errors,
        [
            "f.yaml:2:4: b must be text, not an integer",
            "f.yaml:3:4: c is -2; write a whole number from 0 to 10",
            "f.yaml:4:4: d must be a whole number such as 3, not a number",
            "f.yaml:1:4: a must be true or false, not text",
            "f.yaml:1:4: a must be a list (`- item` lines or `[a, b]`), not text",
            "f.yaml:8:4: h is empty; write a name",
        ]
    );
}

#[test]
fn an_unquoted_template_is_explained() {
    let errors = errors_of("a: {{ params.x }}\n", |reader, root| {
        let fields = reader.mapping(root, "f", &["a"]).unwrap();
        let value = fields.get("a").unwrap();
        reader.text(value, "`a`");
    });
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("must be quoted"), "{errors:?}");
}

#[test]
fn durations_are_human_and_bare_numbers_are_refused_with_the_fix() {
    let text = "a: 1h30m\nb: 0\nc: 30\nd: '45'\ne: 1x\n";
    let errors = errors_of(text, |reader, root| {
        let fields = reader.entries(root, "f").unwrap();
        let read: Vec<Option<Duration>> = fields
            .iter()
            .map(|(name, _, value)| reader.duration(value, &format!("`{name}`")))
            .collect();
        assert_eq!(read[0], Some(Duration::from_secs(5400)));
        assert_eq!(read[1], Some(Duration::ZERO));
        assert!(read[2..].iter().all(Option::is_none));
    });
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].starts_with("f.yaml:3:4: `c` `30` has no unit"),
        "{errors:?}"
    );
    assert!(errors[0].contains("30s"));
    assert!(errors[1].contains("`45` has no unit; write it with one, such as 45s"));
    assert!(errors[2].contains("`1x` has `x` where a digit or a unit goes"));
}

#[test]
fn durations_parse_and_format_canonically() {
    for (text, seconds) in [
        ("0", 0),
        ("30s", 30),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86_400),
        ("1w", 604_800),
        ("1h30m", 5400),
    ] {
        assert_eq!(
            parse_duration(text),
            Ok(Duration::from_secs(seconds)),
            "{text}"
        );
    }
    for bad in ["", "1", "h", "1h30", "1.5h", "99999999999999999999w"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    assert_eq!(format_duration(Duration::from_secs(90_061)), "1d1h1m1s");
    assert_eq!(format_duration(Duration::from_secs(604_800)), "1w");
    assert_eq!(format_duration(Duration::ZERO), "0");
}

#[test]
fn nearest_names_only_close_candidates() {
    assert_eq!(nearest("retires", &["retries", "tasks"]), Some("retries"));
    assert_eq!(nearest("zzzzzz", &["retries", "tasks"]), None);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(article("owner"), "an owner");
    assert_eq!(capitalized("the task"), "The task");
}

#[test]
fn errors_display_with_their_place() {
    let location = Location {
        path: "p.yaml".to_owned(),
        line: 3,
        column: 7,
    };
    let error = SourceError::at(&location, "bad");
    assert_eq!(error.to_string(), "p.yaml:3:7: bad");
    assert_eq!(error.location(), location);
}
