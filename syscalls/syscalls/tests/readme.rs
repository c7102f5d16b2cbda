//! The README's "System calls" table against the syscall table (`abi::syscall_table!`): every
//! row's number, constant, argument count and C signature must match, and every syscall must
//! have its row.

use abi::syscall_numbers::SYSCALLS;

/// The repository's README.
const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));

/// The header of the table.
const HEADER: &str = "| nr | constant | args | call |";

/// One row of the README's table.
#[derive(Debug)]
struct Row<'a> {
    nr: u32,
    constant: &'a str,
    args: usize,
    /// The `call` column's first code span: the C signature, `-> type` for value returns.
    call: &'a str,
}

/// The code span a column starts with (`` `text` `` -> `text`); panics if it starts otherwise.
fn code<'a>(column: &'a str, line: &str) -> &'a str {
    column
        .strip_prefix('`')
        .and_then(|s| s.split('`').next())
        .unwrap_or_else(|| panic!("no code span at the start of `{column}` in: {line}"))
}

/// The body rows of the table under [`HEADER`] in `readme` (panics when there is none, or when a
/// row does not have the table's format).
fn rows(readme: &str) -> Vec<Row<'_>> {
    let mut lines = readme.lines().skip_while(|l| l.trim() != HEADER);
    assert!(lines.next().is_some(), "no `{HEADER}` table in the README");
    lines.next(); // | --- | --- | --- | --- |
    lines
        .take_while(|l| l.starts_with('|'))
        .map(|line| {
            let cols: Vec<&str> = line.splitn(5, '|').map(str::trim).collect();
            let [_, nr, constant, args, call] = cols[..] else {
                panic!("not a row of four columns: {line}");
            };
            Row {
                nr: nr
                    .parse()
                    .unwrap_or_else(|_| panic!("nr `{nr}` in: {line}")),
                constant: code(constant, line),
                args: args
                    .parse()
                    .unwrap_or_else(|_| panic!("args `{args}` in: {line}")),
                call: code(call, line),
            }
        })
        .collect()
}

#[test]
fn readme_syscall_table_matches_the_abi_table() {
    let rows = rows(README);
    for row in &rows {
        let Some(s) = SYSCALLS.get(row.nr as usize) else {
            panic!("README row {row:?}: no syscall {} in the table", row.nr);
        };
        assert_eq!(row.constant, s.name, "README row {}: constant", row.nr);
        assert_eq!(row.args, s.arg_count(), "README row {}: args", row.nr);
        let rest = row.call.strip_prefix(s.signature);
        assert!(
            rest.is_some_and(|rest| rest.is_empty() || rest.starts_with(" -> ")),
            "README row {}: call `{}` is not `{}`",
            row.nr,
            row.call,
            s.signature
        );
    }
    let numbers: Vec<u32> = rows.iter().map(|r| r.nr).collect();
    let table: Vec<u32> = SYSCALLS.iter().map(|s| s.nr).collect();
    assert_eq!(
        numbers, table,
        "the README has one row per syscall, in number order"
    );
}

#[test]
fn parser_reads_one_row_whose_text_has_a_bar() {
    let good = "| nr | constant | args | call |\n| --- | --- | --- | --- |\n\
                | 2 | `ZX_SYS_VMAR_UNMAP` | 3 | `zx_vmar_unmap(vmar, addr, len)`: text | with bar |\n\
                \nafter";
    let rows = rows(good);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].nr, 2);
    assert_eq!(rows[0].constant, "ZX_SYS_VMAR_UNMAP");
    assert_eq!(rows[0].args, 3);
    assert_eq!(rows[0].call, "zx_vmar_unmap(vmar, addr, len)");
}
