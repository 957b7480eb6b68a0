//! `colonymesh location add|ls|get|rm`: named places of a colony (managed by its owner).

use super::env::ClientEnv;
use super::output::Output;
use clap::Subcommand;
use proto::msgs::{ColonyNameMsg, LocationMsg, UserNameMsg};
use proto::{Location, Request};

#[derive(Debug, Subcommand)]
pub(crate) enum LocationCommand {
    /// Add a location (colony owner).
    Add {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Longitude.
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
        long: f64,
        /// Latitude.
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
        lat: f64,
    },
    /// List the colony's locations.
    Ls,
    /// Show a location.
    Get {
        #[arg(long)]
        name: String,
    },
    /// Remove a location (colony owner).
    Rm {
        #[arg(long)]
        name: String,
    },
}

const HEADERS: [&str; 5] = ["NAME", "DESCRIPTION", "LONG", "LAT", "LOCATIONID"];

fn rows(locations: &[Location]) -> Vec<Vec<String>> {
    locations
        .iter()
        .map(|l| {
            vec![
                l.name.clone(),
                l.description.clone(),
                l.long.to_string(),
                l.lat.to_string(),
                l.locationid.clone(),
            ]
        })
        .collect()
}

pub(crate) async fn run(
    command: LocationCommand,
    env: &ClientEnv,
    out: &Output,
) -> anyhow::Result<()> {
    let client = env.client()?;
    let colonyname = env.colony(None)?;
    match command {
        LocationCommand::Add {
            name,
            description,
            long,
            lat,
        } => {
            let location = Location {
                name,
                colonyname,
                description,
                long,
                lat,
                ..Location::default()
            };
            let request = Request::AddLocation(LocationMsg { location });
            let location: Location = client.call(&request, &env.colony_prvkey()?).await?;
            out.show(&location, &HEADERS, rows(std::slice::from_ref(&location)));
        }
        LocationCommand::Ls => {
            let request = Request::GetLocations(ColonyNameMsg { colonyname });
            let locations: Vec<Location> = client.call(&request, &env.prvkey()?).await?;
            out.show(&locations, &HEADERS, rows(&locations));
        }
        LocationCommand::Get { name } => {
            let request = Request::GetLocation(UserNameMsg { colonyname, name });
            let location: Location = client.call(&request, &env.prvkey()?).await?;
            out.show(&location, &HEADERS, rows(std::slice::from_ref(&location)));
        }
        LocationCommand::Rm { name } => {
            let request = Request::RemoveLocation(UserNameMsg {
                colonyname,
                name: name.clone(),
            });
            let _: serde_json::Value = client.call(&request, &env.colony_prvkey()?).await?;
            out.done("name", &name, "removed");
        }
    }
    Ok(())
}
