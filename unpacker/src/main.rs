//! ferry-unpack: the command line. It parses and dispatches; the `ferry_unpack` library does
//! the work, and each subcommand's flags live in `commands/`.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Verify a ferry archive offline and push it into the site's registry.
///
/// Typical use on the disconnected side:
///   ferry-unpack verify /media/usb/ferry --trust ferry.key.pub
///   ferry-unpack push   /media/usb/ferry --trust ferry.key.pub --to registry.site:5000/mirror
///   ferry-unpack repair /media/usb/ferry --trust ferry.key.pub   (lost volumes, with parity)
///   ferry-unpack extract /media/usb/ferry --trust ferry.key.pub --release 4.15.3 \
///       --command openshift-install --to ./bin --mirror registry.site:5000/mirror
///
/// The trusted key is the public half of the key the archive was signed with; get it by a
/// channel other than the media.
#[derive(Parser, Debug)]
#[command(name = "ferry-unpack", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Verify(commands::verify::Args),
    Push(commands::push::Args),
    Manifests(commands::manifests::Args),
    Inventory(commands::inventory::Args),
    Serve(commands::serve::Args),
    Repair(commands::repair::Args),
    Delete(commands::delete::Args),
    Extract(commands::extract::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Verify(a) => commands::verify::exec(a),
        Command::Push(a) => commands::push::exec(a),
        Command::Manifests(a) => commands::manifests::exec(a),
        Command::Inventory(a) => commands::inventory::exec(a),
        Command::Serve(a) => commands::serve::exec(a),
        Command::Repair(a) => commands::repair::exec(a),
        Command::Delete(a) => commands::delete::exec(a),
        Command::Extract(a) => commands::extract::exec(a),
    };
    result.unwrap_or_else(|e| {
        eprintln!("ferry-unpack: error: {e:#}");
        ExitCode::FAILURE
    })
}
