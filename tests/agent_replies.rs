//! What the customer reads of an agent's reply: one `.eml` per mail client
//! (Gmail in Spanish and English, Outlook desktop and on the web, Apple
//! Mail, Thunderbird; plain text and HTML) beside the text it must become,
//! through the real parser and `mailroom::words`.

use std::path::Path;

#[test]
fn each_clients_reply_becomes_the_agents_words() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agent_replies");
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    entries.sort();
    for eml in entries {
        let raw = std::fs::read(&eml).unwrap();
        let mail = buzon::parse::parse(&raw, 1 << 22).unwrap();
        let want = std::fs::read_to_string(eml.with_extension("txt")).unwrap();
        let got = buzon::mailroom::words::new_words(&mail.text);
        assert_eq!(
            got,
            want,
            "{}: the parser gave\n{}",
            eml.display(),
            mail.text
        );
        seen += 1;
    }
    assert_eq!(seen, 6, "one fixture per client");
}
