//! The configuration commands (`setsecret`, `addseed`, `profile NAME ...`,
//! `showconfig`, ...): each loads the configuration file, edits or shows
//! it, and saves it when it changed.

use aemp::config::Config;
use aemp::{NodeId, Value};
use clap::Parser;

use crate::args::{Cli, Cmd};
use crate::{config_path, to_json, Res};

/// Runs a configuration command on the top level (`profile` `None`) or on
/// one profile.
pub(crate) fn configure(cli: &Cli, profile: Option<&str>, cmd: &Cmd) -> Res {
    let path = config_path(cli);
    let mut cfg = Config::load(&path).map_err(|e| e.to_string())?;
    let e = |e: aemp::Error| e.to_string();
    let list = |v: &[String]| Value::from(v.to_vec());
    let mut changed = true;
    match cmd {
        Cmd::Setnodeid { id } => {
            NodeId::new(id).map_err(e)?;
            cfg.set(profile, "nodeid", serde_json::Value::String(id.clone())).map_err(e)?;
        }
        Cmd::Delnodeid => drop(cfg.delete(profile, "nodeid").map_err(e)?),
        Cmd::Gensecret => {
            let s = random_secret();
            cfg.set(profile, "secret", serde_json::Value::String(s)).map_err(e)?;
        }
        Cmd::Setsecret { secret } => {
            cfg.set(profile, "secret", serde_json::Value::String(secret.clone())).map_err(e)?
        }
        Cmd::Delsecret => drop(cfg.delete(profile, "secret").map_err(e)?),
        Cmd::Gencert => {
            let pem = aemp::generate_cert_pem("AnyEvent::MP").map_err(e)?;
            cfg.set(profile, "cert", serde_json::Value::String(pem)).map_err(e)?;
        }
        Cmd::Setcert { file } => {
            let pem = std::fs::read_to_string(file)
                .map_err(|err| format!("cannot read {}: {err}", file.display()))?;
            aemp::check_cert_pem(&pem).map_err(e)?;
            cfg.set(profile, "cert", serde_json::Value::String(pem)).map_err(e)?;
        }
        Cmd::Delcert => drop(cfg.delete(profile, "cert").map_err(e)?),
        Cmd::Setbinds { binds } => cfg.set(profile, "binds", to_json(list(binds))).map_err(e)?,
        Cmd::Delbinds => drop(cfg.delete(profile, "binds").map_err(e)?),
        Cmd::Addbind { bind } => drop(cfg.add_to_list(profile, "binds", bind).map_err(e)?),
        Cmd::Delbind { bind } => drop(cfg.remove_from_list(profile, "binds", bind).map_err(e)?),
        Cmd::Setseeds { seeds } => cfg.set(profile, "seeds", to_json(list(seeds))).map_err(e)?,
        Cmd::Delseeds => drop(cfg.delete(profile, "seeds").map_err(e)?),
        Cmd::Addseed { seed } => drop(cfg.add_to_list(profile, "seeds", seed).map_err(e)?),
        Cmd::Delseed { seed } => drop(cfg.remove_from_list(profile, "seeds", seed).map_err(e)?),
        Cmd::Setservices { services } => cfg.set(profile, "services", to_json(list(services))).map_err(e)?,
        Cmd::Delservices => drop(cfg.delete(profile, "services").map_err(e)?),
        Cmd::Addservice { service } => drop(cfg.add_to_list(profile, "services", service).map_err(e)?),
        Cmd::Delservice { service } => drop(cfg.remove_from_list(profile, "services", service).map_err(e)?),
        Cmd::Profile { name, command } => {
            if profile.is_some() {
                return Err("profile commands do not nest".into());
            }
            let mut argv = vec!["aemp".to_owned()];
            argv.extend(command.iter().cloned());
            let sub = Cli::try_parse_from(argv)
                .map_err(|err| err.to_string().lines().next().unwrap_or("").to_owned())?;
            return configure(cli, Some(name), &sub.cmd);
        }
        Cmd::Delprofile { name } => {
            if !cfg.delete_profile(name).map_err(e)? {
                return Err(format!("no profile {name:?}"));
            }
        }
        Cmd::Showprofile { name } => {
            changed = false;
            let v = cfg.as_map().get("profile").and_then(|p| p.get(name)).cloned();
            match v {
                Some(v) => println!("{}", serde_json::to_string_pretty(&hide(v)).unwrap_or_default()),
                None => return Err(format!("no profile {name:?}")),
            }
        }
        Cmd::Showconfig { profile: p } => {
            changed = false;
            let v = match p {
                Some(p) => cfg.merged_json(p),
                None => serde_json::Value::Object(cfg.as_map().clone()),
            };
            println!("{}", serde_json::to_string_pretty(&hide(v)).unwrap_or_default());
        }
        other => return Err(format!("{other:?} is not a configuration command")),
    }
    if changed {
        cfg.save(&path).map_err(e)?;
    }
    Ok(())
}

/// Hides secrets and keys in shown configuration.
fn hide(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        for (k, x) in o.iter_mut() {
            if k == "secret" || k == "cert" {
                *x = serde_json::Value::String("<hidden>".into());
            } else {
                *x = hide(x.take());
            }
        }
    }
    v
}

/// A random 43-character alphanumeric secret (also `aemp observe`'s token).
pub(crate) fn random_secret() -> String {
    use rand::Rng;
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut r = rand::rng();
    (0..43).map(|_| A[r.random_range(0..A.len())] as char).collect()
}
