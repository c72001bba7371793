//! `paygate user create`: a merchant console user of one app. The password comes from a file or stdin (the
//! first line, without its line ending), never from argv, which other users of the host can read in `ps`.

use crate::cli::Database;
use clap::{Args, Subcommand};
use paygate_core::console::Role;
use paygate_core::{Paygate, SystemClock};
use paygate_domain::Problem;
use std::io::Read;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a console user (the password is read from --password-file, or from stdin).
    Create(UserCreateArgs),
}

#[derive(Debug, Args)]
pub struct UserCreateArgs {
    /// The app's id (app_…).
    #[arg(long = "app")]
    pub app_id: String,
    #[arg(long)]
    pub email: String,
    /// admin: everything; support: read and refund; viewer: read.
    #[arg(long, value_parser = ["admin", "support", "viewer"])]
    pub role: String,
    /// A file whose first line is the password; without it the first line of stdin is.
    #[arg(long)]
    pub password_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub db: Database,
}

/// The first line of `text`, without `\n` or `\r\n`.
fn first_line(text: &str) -> &str {
    let line = text.split('\n').next().unwrap_or("");
    line.strip_suffix('\r').unwrap_or(line)
}

fn read_password(file: Option<&std::path::Path>) -> Result<String, Problem> {
    let mut text = String::new();
    let read = match file {
        Some(path) => std::fs::File::open(path).and_then(|f| f.take(64 * 1024).read_to_string(&mut text)),
        None => std::io::stdin().take(64 * 1024).read_to_string(&mut text),
    };
    read.map_err(|e| Problem::invalid("password_file", format!("Cannot read the password: {e}")))?;
    Ok(first_line(&text).to_string())
}

pub async fn run(cmd: UserCommand) -> Result<(), Problem> {
    let UserCommand::Create(args) = cmd;
    let role = Role::parse(&args.role).ok_or_else(|| Problem::invalid("role", "admin, support or viewer"))?;
    let password = read_password(args.password_file.as_deref())?;
    let app: Arc<Paygate> = paygate::start_configured(
        &args.db.database,
        usize::from(args.db.pg_pool),
        Arc::new(SystemClock),
        paygate_core::Policy::default(),
    )
    .await?;
    let user = app.create_console_user(&args.app_id, &args.email, role, &password).await?;
    println!("{} {} {} (app {})", user.id, user.email, user.role.as_str(), user.app_id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn user_create_parses_and_takes_no_password_argument() {
        let argv = ["paygate", "user", "create", "--app", "app_1", "--email", "a@b.c", "--role", "support"];
        let cli = Cli::try_parse_from(argv).unwrap();
        let Command::User(UserCommand::Create(args)) = cli.command else { panic!("user create") };
        assert_eq!((args.app_id.as_str(), args.email.as_str(), args.role.as_str()), ("app_1", "a@b.c", "support"));
        assert!(args.password_file.is_none());
        let with_file = [&argv[..], &["--password-file", "/tmp/pw"]].concat();
        let Command::User(UserCommand::Create(args)) = Cli::try_parse_from(with_file).unwrap().command else {
            panic!("user create")
        };
        assert_eq!(args.password_file.as_deref(), Some(std::path::Path::new("/tmp/pw")));
        assert!(Cli::try_parse_from([&argv[..], &["--password", "hunter2hunter2"]].concat()).is_err());
        let owner = ["paygate", "user", "create", "--app", "app_1", "--email", "a@b.c", "--role", "owner"];
        assert!(Cli::try_parse_from(owner).is_err());
        assert_eq!(first_line("pw with spaces\r\nnext"), "pw with spaces");
        assert_eq!(first_line("pw"), "pw");
    }
}
