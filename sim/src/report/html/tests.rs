use super::*;

#[test]
fn escaping_covers_markup_and_quotes() {
    assert_eq!(esc("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
}

#[test]
fn the_gallery_index_is_well_formed_and_links_each_report() {
    let html = gallery_index(&[
        ("a".into(), 1, "ok, as expected", "A & B".into()),
        ("b".into(), 2, "violation, as expected", "<x>".into()),
    ]);
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .expect("well-formed");
    let links: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("href"))
        .collect();
    assert_eq!(links, ["a.html", "a.md", "b.html", "b.md"]);
}
