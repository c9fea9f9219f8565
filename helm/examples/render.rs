//! Prints what a chart renders to (a debugging aid): `cargo run -p ferry-helm --example render -- DIR|TGZ`.
fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).expect("a chart directory or .tgz");
    let chart = ferry_helm::chart::from_path(std::path::Path::new(&path))?;
    for r in ferry_helm::render::render(&chart, None)? {
        println!("---\n# Source: {}\n{}", r.name, r.text);
    }
    Ok(())
}
