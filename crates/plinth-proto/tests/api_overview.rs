//! `docs/api.md` checked against the protos: each gRPC service of `proto/` (packages `plinth.*.v1`
//! and `inference`) has a generated block in the overview, one table row per RPC with its request
//! and response and the first sentence of the RPC's leading comment. The rows are built from the
//! FileDescriptorSet that `build.rs` compiles with protox, which keeps source info (the comments).
//!
//! A stale overview fails the test with the missing, stale and changed RPCs.
//! `PLINTH_UPDATE_DOCS=1` rewrites the generated blocks instead. The CLI column is hand-written: a
//! rewrite keeps it per RPC.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use prost::Message as _;
use prost_types::FileDescriptorSet;

const BEGIN: &str = "<!-- generated:begin ";
const END: &str = "<!-- generated:end ";
const CLOSE: &str = " -->";
const HEADER: &str = "| RPC | CLI | Request → response | What it does |\n|---|---|---|---|\n";
/// The CLI cell of an RPC no command calls (yet).
const NO_CLI: &str = "—";
const UPDATE_HINT: &str = "run `PLINTH_UPDATE_DOCS=1 cargo nextest run -p plinth-proto -E \
                           'test(api_overview)'` to rewrite the generated blocks of docs/api.md";

/// One RPC as the protos define it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rpc {
    name: String,
    /// `` `Request` → `Response` ``, with `stream` on a streaming side.
    call: String,
    /// The first sentence of the leading comment; `None` when the RPC has none.
    summary: Option<String>,
}

/// One gRPC service as the protos define it.
#[derive(Debug, Clone)]
struct Service {
    /// `package.Service`, e.g. `plinth.serving.v1.ServingService`.
    full_name: String,
    /// The `.proto` file, for messages.
    file: String,
    rpcs: Vec<Rpc>,
}

/// A row of a generated block in the document: the RPC's name, its CLI cell and the whole line.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    cli: String,
    line: String,
}

/// A generated block of the document: the service it names and the byte range of its rows.
#[derive(Debug)]
struct Block {
    service: String,
    rows: Vec<Row>,
    /// From the end of the begin marker's line to the start of the end marker.
    body: std::ops::Range<usize>,
    /// The whole block, markers included.
    whole: std::ops::Range<usize>,
}

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md")
}

/// The services of the Plinth packages and of `inference`, in the descriptor's file order.
fn services_from_protos() -> Result<Vec<Service>, String> {
    let set = FileDescriptorSet::decode(plinth_proto::FILE_DESCRIPTOR_SET).map_err(|error| {
        format!("plinth_proto::FILE_DESCRIPTOR_SET is not a FileDescriptorSet: {error}")
    })?;
    let mut services = Vec::new();
    for file in &set.file {
        let package = file.package();
        let ours =
            (package.starts_with("plinth.") && package.ends_with(".v1")) || package == "inference";
        if !ours {
            continue;
        }
        let comments: BTreeMap<Vec<i32>, String> = file
            .source_code_info
            .iter()
            .flat_map(|info| &info.location)
            .filter_map(|location| {
                let comment = location.leading_comments.as_ref()?;
                Some((location.path.clone(), comment.clone()))
            })
            .collect();
        // Source-info paths are i32 indexes: FileDescriptorProto.service = 6,
        // ServiceDescriptorProto.method = 2.
        for (service_index, service) in (0_i32..).zip(&file.service) {
            let rpcs = (0_i32..)
                .zip(&service.method)
                .map(|(method_index, method)| {
                    let path = vec![6, service_index, 2, method_index];
                    Rpc {
                        name: method.name().to_owned(),
                        call: call(
                            method.input_type(),
                            method.client_streaming(),
                            method.output_type(),
                            method.server_streaming(),
                        ),
                        summary: comments
                            .get(&path)
                            .and_then(|comment| first_sentence(comment)),
                    }
                })
                .collect();
            services.push(Service {
                full_name: format!("{package}.{}", service.name()),
                file: file.name().to_owned(),
                rpcs,
            });
        }
    }
    Ok(services)
}

/// `` `stream A` → `B` `` from fully qualified type names (`.plinth.datahub.v1.A`).
fn call(input: &str, input_stream: bool, output: &str, output_stream: bool) -> String {
    let side = |type_name: &str, stream: bool| {
        let simple = type_name.rsplit('.').next().unwrap_or(type_name);
        if stream {
            format!("`stream {simple}`")
        } else {
            format!("`{simple}`")
        }
    };
    format!(
        "{} → {}",
        side(input, input_stream),
        side(output, output_stream)
    )
}

/// The first sentence of a comment, on one line: up to the first `. ` followed by a capital letter
/// (not after `e.g.` or `i.e.`), or the whole comment. `|` is escaped for the table.
fn first_sentence(comment: &str) -> Option<String> {
    let text = comment.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    let mut end = text.len();
    for (at, _) in text.match_indices(". ") {
        let next = text[at + 2..].chars().next();
        let before = &text[..at];
        let abbreviation = before.ends_with("e.g") || before.ends_with("i.e");
        if next.is_some_and(|c| c.is_ascii_uppercase()) && !abbreviation {
            end = at + 1;
            break;
        }
    }
    Some(text[..end].replace('|', "\\|"))
}

/// The rows of a service's generated block, with the CLI cells of `cli` (by RPC name).
fn render_rows(service: &Service, cli: &BTreeMap<String, String>) -> Vec<Row> {
    service
        .rpcs
        .iter()
        .map(|rpc| {
            let cli_cell = cli
                .get(&rpc.name)
                .cloned()
                .unwrap_or_else(|| NO_CLI.to_owned());
            let summary = rpc.summary.as_deref().unwrap_or("");
            Row {
                name: rpc.name.clone(),
                line: format!("| `{}` | {cli_cell} | {} | {summary} |", rpc.name, rpc.call),
                cli: cli_cell,
            }
        })
        .collect()
}

/// A block's body: the table header and one line per row.
fn render_body(rows: &[Row]) -> String {
    let mut body = HEADER.to_owned();
    for row in rows {
        body.push_str(&row.line);
        body.push('\n');
    }
    body
}

fn render_block(service: &str, rows: &[Row]) -> String {
    format!(
        "{BEGIN}{service}{CLOSE}\n{}{END}{service}{CLOSE}",
        render_body(rows)
    )
}

/// The generated blocks of a document, or what is malformed about its markers. A marker is a line
/// of its own, so prose may mention one.
fn parse_blocks(doc: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    // The open block: its service, where its begin line starts and where its body starts.
    let mut open: Option<(String, usize, usize)> = None;
    let mut offset = 0;
    for line in doc.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let text = line.trim_end();
        if let Some(service) = marker(text, BEGIN) {
            if let Some((open_service, ..)) = &open {
                return Err(format!(
                    "docs/api.md: `{text}` inside the block of {open_service}, which needs its \
                     `{END}{open_service}{CLOSE}` line first"
                ));
            }
            open = Some((service.to_owned(), start, offset));
        } else if let Some(service) = marker(text, END) {
            let Some((open_service, whole_start, body_start)) = open.take() else {
                return Err(format!("docs/api.md: `{text}` without its begin line"));
            };
            if open_service != service {
                return Err(format!(
                    "docs/api.md: `{text}` closes the block of {open_service}: write \
                     `{END}{open_service}{CLOSE}`"
                ));
            }
            let body = body_start..start;
            blocks.push(Block {
                service: open_service,
                rows: doc[body.clone()].lines().filter_map(parse_row).collect(),
                body,
                whole: whole_start..start + text.len(),
            });
        }
    }
    if let Some((service, ..)) = open {
        return Err(format!(
            "docs/api.md: the block of {service} has no `{END}{service}{CLOSE}` line"
        ));
    }
    Ok(blocks)
}

/// The service a marker line names, for `kind` BEGIN or END.
fn marker<'a>(line: &'a str, kind: &str) -> Option<&'a str> {
    line.strip_prefix(kind)?.strip_suffix(CLOSE)
}

/// A table row `` | `Name` | cli | ... ``; `None` for the header, the separator and other lines.
fn parse_row(line: &str) -> Option<Row> {
    let cells: Vec<&str> = line.strip_prefix("| `")?.splitn(3, " | ").collect();
    let name = cells.first()?.strip_suffix('`')?;
    Some(Row {
        name: name.to_owned(),
        cli: (*cells.get(1)?).to_owned(),
        line: line.to_owned(),
    })
}

/// What is out of date in `doc`, as diff-like lines, and the document with every block regenerated.
struct Check {
    problems: Vec<String>,
    updated: String,
}

fn check(doc: &str, services: &[Service]) -> Result<Check, String> {
    let blocks = parse_blocks(doc)?;
    let mut problems = Vec::new();
    let mut replacements: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let mut appended = String::new();

    for service in services {
        for rpc in service.rpcs.iter().filter(|rpc| rpc.summary.is_none()) {
            problems.push(format!(
                "! {}.{} has no leading comment in {}: write one above the rpc (its first \
                 sentence is the overview's line)",
                service.full_name, rpc.name, service.file
            ));
        }
        let Some(block) = blocks
            .iter()
            .find(|block| block.service == service.full_name)
        else {
            problems.push(format!(
                "+ service {} ({}) has no `{BEGIN}{}{CLOSE}` block; missing RPCs: {}",
                service.full_name,
                service.file,
                service.full_name,
                service
                    .rpcs
                    .iter()
                    .map(|rpc| rpc.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            let rows = render_rows(service, &BTreeMap::new());
            let _ = write!(
                appended,
                "\n## `{}`\n\nFrom `proto/{}`.\n\n{}\n",
                service.full_name,
                service.file,
                render_block(&service.full_name, &rows)
            );
            continue;
        };
        let reported = problems.len();
        let cli: BTreeMap<String, String> = block
            .rows
            .iter()
            .map(|row| (row.name.clone(), row.cli.clone()))
            .collect();
        let expected = render_rows(service, &cli);
        let documented: BTreeSet<&str> = block.rows.iter().map(|row| row.name.as_str()).collect();
        let defined: BTreeSet<&str> = service.rpcs.iter().map(|rpc| rpc.name.as_str()).collect();
        for row in &expected {
            match block
                .rows
                .iter()
                .find(|documented| documented.name == row.name)
            {
                None => problems.push(format!("+ {}: missing RPC {}", service.full_name, row.name)),
                Some(documented) if documented.line != row.line => problems.push(format!(
                    "~ {}: RPC {} changed\n    - {}\n    + {}",
                    service.full_name, row.name, documented.line, row.line
                )),
                Some(_) => {}
            }
        }
        for stale in documented.difference(&defined) {
            problems.push(format!(
                "- {}: stale RPC {stale} (no longer in the proto)",
                service.full_name
            ));
        }
        let order: Vec<&str> = block.rows.iter().map(|row| row.name.as_str()).collect();
        let proto_order: Vec<&str> = service.rpcs.iter().map(|rpc| rpc.name.as_str()).collect();
        if order != proto_order && documented == defined {
            problems.push(format!(
                "~ {}: RPCs are not in the proto's order ({})",
                service.full_name,
                proto_order.join(", ")
            ));
        }
        let expected_body = render_body(&expected);
        if doc[block.body.clone()] != expected_body && problems.len() == reported {
            problems.push(format!(
                "~ {}: the block's table is not the generated one (header or spacing)",
                service.full_name
            ));
        }
        replacements.push((block.body.clone(), expected_body));
    }
    for block in &blocks {
        if !services
            .iter()
            .any(|service| service.full_name == block.service)
        {
            problems.push(format!(
                "- stale service {}: no proto defines it (its block is removed on update; remove \
                 its section's hand-written text too)",
                block.service
            ));
            replacements.push((block.whole.clone(), String::new()));
        }
    }

    replacements.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    let mut updated = doc.to_owned();
    for (range, text) in replacements {
        updated.replace_range(range, &text);
    }
    updated.push_str(&appended);
    Ok(Check { problems, updated })
}

#[test]
fn api_overview_matches_the_protos() {
    let services = services_from_protos().unwrap_or_else(|error| panic!("{error}"));
    assert!(
        services
            .iter()
            .any(|service| service.full_name == "inference.GRPCInferenceService"),
        "the descriptor set lacks inference.GRPCInferenceService: {:?}",
        services
            .iter()
            .map(|service| &service.full_name)
            .collect::<Vec<_>>()
    );
    let path = doc_path();
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    let checked = check(&doc, &services).unwrap_or_else(|error| panic!("{error}"));
    if checked.problems.is_empty() {
        return;
    }
    let commentless = checked
        .problems
        .iter()
        .any(|problem| problem.starts_with('!'));
    if std::env::var_os("PLINTH_UPDATE_DOCS").is_some_and(|value| value == "1") && !commentless {
        std::fs::write(&path, &checked.updated)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
        eprintln!(
            "rewrote {}:\n{}",
            path.display(),
            checked.problems.join("\n")
        );
        return;
    }
    panic!(
        "docs/api.md is out of date with proto/ (+ missing, - stale, ~ changed, ! to fix in the \
         proto):\n{}\n\n{UPDATE_HINT}; then fill in the CLI column (and a new service's section) \
         by hand",
        checked.problems.join("\n")
    );
}

/// The checker itself, on small documents: what it reports and what a rewrite produces.
mod checker {
    use super::*;

    fn service(rpcs: &[(&str, &str)]) -> Service {
        Service {
            full_name: "plinth.demo.v1.DemoService".to_owned(),
            file: "plinth/demo/v1/demo.proto".to_owned(),
            rpcs: rpcs
                .iter()
                .map(|(name, summary)| Rpc {
                    name: (*name).to_owned(),
                    call: format!("`{name}Request` → `{name}Response`"),
                    summary: Some((*summary).to_owned()),
                })
                .collect(),
        }
    }

    fn doc_with(rows: &[&str]) -> String {
        format!(
            "# API\n\nIntro.\n\n{BEGIN}plinth.demo.v1.DemoService{CLOSE}\n{HEADER}{}\n\
             {END}plinth.demo.v1.DemoService{CLOSE}\n\nAfter.\n",
            rows.join("\n")
        )
    }

    #[test]
    fn api_overview_reports_missing_stale_and_changed_rpcs_and_keeps_cli_cells() {
        let services = [service(&[("Get", "Reads one."), ("Put", "Writes one.")])];
        let doc = doc_with(&[
            "| `Get` | `plinth demo get` | `GetRequest` → `GetResponse` | Reads some. |",
            "| `Gone` | — | `GoneRequest` → `GoneResponse` | Was here. |",
        ]);
        let checked = check(&doc, &services).expect("well-formed markers");
        let report = checked.problems.join("\n");
        assert!(
            report.contains("+ plinth.demo.v1.DemoService: missing RPC Put"),
            "{report}"
        );
        assert!(
            report.contains("- plinth.demo.v1.DemoService: stale RPC Gone"),
            "{report}"
        );
        assert!(
            report.contains("~ plinth.demo.v1.DemoService: RPC Get changed"),
            "{report}"
        );
        assert!(
            checked.updated.contains(
                "| `Get` | `plinth demo get` | `GetRequest` → `GetResponse` | Reads one. |\n\
                 | `Put` | — | `PutRequest` → `PutResponse` | Writes one. |\n<!-- generated:end"
            ),
            "{}",
            checked.updated
        );
        assert!(!checked.updated.contains("Gone"), "{}", checked.updated);
        assert!(
            checked.updated.starts_with("# API\n\nIntro.\n\n")
                && checked.updated.ends_with("After.\n")
        );
        let again = check(&checked.updated, &services).expect("well-formed markers");
        assert_eq!(again.problems, Vec::<String>::new());
    }

    #[test]
    fn api_overview_appends_a_missing_service_and_drops_a_stale_one() {
        let services = [Service {
            full_name: "plinth.other.v1.OtherService".to_owned(),
            ..service(&[("Ping", "Answers.")])
        }];
        let checked = check(&doc_with(&[]), &services).expect("well-formed markers");
        let report = checked.problems.join("\n");
        assert!(
            report.contains("+ service plinth.other.v1.OtherService"),
            "{report}"
        );
        assert!(report.contains("missing RPCs: Ping"), "{report}");
        assert!(
            report.contains("- stale service plinth.demo.v1.DemoService"),
            "{report}"
        );
        assert!(
            !checked.updated.contains("DemoService"),
            "{}",
            checked.updated
        );
        assert!(
            checked
                .updated
                .contains("<!-- generated:begin plinth.other.v1.OtherService -->")
        );
        let again = check(&checked.updated, &services).expect("well-formed markers");
        assert_eq!(again.problems, Vec::<String>::new());
    }

    #[test]
    fn api_overview_summary_is_the_first_sentence() {
        assert_eq!(
            first_sentence(" Loads a version (e.g. v2). Then\n serves it.\n").as_deref(),
            Some("Loads a version (e.g. v2).")
        );
        assert_eq!(
            first_sentence(" Reads the mode, e.g. Global. Or not.\n").as_deref(),
            Some("Reads the mode, e.g. Global.")
        );
        assert_eq!(
            first_sentence(" Lists subjects.\n").as_deref(),
            Some("Lists subjects.")
        );
        assert_eq!(
            first_sentence(" a | b. and more\n").as_deref(),
            Some("a \\| b. and more")
        );
        assert_eq!(first_sentence("  \n"), None);
    }
}
