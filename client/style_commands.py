"""`styleforge styles create|list|delete`: a studio's house styles, saved once and used by `--style-id`."""

import argparse
from pathlib import Path

from client.sdk import Client


def register(commands: argparse._SubParsersAction, api: argparse.ArgumentParser, runner) -> None:
    """Add `styles` and its three subcommands; ``runner`` wraps a command as client/commands.py does."""
    styles = commands.add_parser("styles", help="save, list and delete house styles (used by --style-id)")
    verbs = styles.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create", parents=[api], help="save style images under a name; prints its id")
    create.add_argument("name")
    create.add_argument("--style", type=Path, action="append", required=True, help="repeat to blend styles")
    create.add_argument("--weights", help="blend weights, one per --style, e.g. 0.7,0.3")
    create.add_argument("--scale", type=float, help="style_scale: the style's size relative to the output")
    create.set_defaults(run=runner(create_command))
    listing = verbs.add_parser("list", parents=[api], help="your saved styles, newest first")
    listing.set_defaults(run=runner(list_command))
    delete = verbs.add_parser("delete", parents=[api], help="delete a saved style")
    delete.add_argument("id")
    delete.set_defaults(run=runner(delete_command))


def create_command(client: Client, args: argparse.Namespace) -> int:
    """Save the style; its id alone on stdout, so scripts can capture it."""
    weights = [float(weight) for weight in args.weights.split(",")] if args.weights else None
    style = client.create_style(args.name, args.style, blend_weights=weights, style_scale=args.scale)
    print(style["id"])
    return 0


def list_command(client: Client, args: argparse.Namespace) -> int:
    """One line per saved style: id, images, weights, scale, name."""
    for style in client.styles():
        weights = ",".join(f"{weight:g}" for weight in style["style_blend_weights"])
        shape = f"{len(style['images'])} image(s)  weights {weights}  scale {style['style_scale']:g}"
        print(f"{style['id']}  {shape}  {style['name']}")
    return 0


def delete_command(client: Client, args: argparse.Namespace) -> int:
    """Delete the style; jobs already recorded with it are not touched."""
    client.delete_style(args.id)
    print(f"deleted style {args.id}")
    return 0
