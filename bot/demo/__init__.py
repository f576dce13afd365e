"""`amibot demo`: the whole bot on one machine, with Slack, AWS and Redis emulated in process.

    amibot demo                      type commands at a prompt (or pipe them in)
    amibot demo --script FILE        play a script; exit 0 when every step passed, else 1
    amibot demo --script example     the bundled example (bot/demo/scripts/create.txt); the
                                     bundled scripts by name: create (= example), deregister,
                                     tour (list, describe, copy, prune --dry-run, the Home tab),
                                     prune (the schedule's Keep notice, Keep, a dry run, a plan
                                     approved by a second person)
    amibot demo --prune-schedule CRON   with the prune schedule on (default off); its Keep
                                     notice is posted at start (due 3 days ahead of a run)

The bot is the production bot built by `bot.app.build`: the same handlers, services, worker,
tracker and outbox. Only its peers are emulated: Redis is fakeredis, AWS is moto (seeded with
example instances and older AMIs; a new image stays `pending` for a few seconds), Slack is
`bot.fakeslack.FakeSlack` on 127.0.0.1. Each `/ami` line becomes the form body Slack would
send, signed with the demo's signing secret and dispatched through Bolt as in HTTP mode; each
`click N` becomes a `block_actions` payload, and `home` the `app_home_opened` event (a signed
JSON Events API callback). Everything the bot sends to Slack is shown as text as it arrives
(messages, ephemeral replies, modals and the published Home tab), buttons numbered
`[1 Approve] [2 Reject]`.

Lines (the same at the prompt and in a script):

    /ami SUBCOMMAND ...     a slash command; the leading `/ami` may be left out
    click N | click LABEL   click button [N], or the last button still shown with that label
                            (a confirm dialog is confirmed; a button of a message that has
                            changed since can still be clicked, as a stale Slack client could)
    home                    open amibot's App Home tab as the current person: the bot publishes
                            it (jobs in flight, pending approvals, recent completions) and it
                            is shown as text; `click Refresh` publishes it again
    as USER                 act as alice (requester), bob (approver), carol (admin) or dave (no role)
    in CHANNEL              type in #general (the start), #ops, #amibot (the notify channel),
                            #random or #private (amibot is not a member of those two)
    instances               the example instances: name, id, region, state (shown at the start)
    images [REGION]         the AMIs in the emulated account, with their state
    wait [SECONDS]          sleep; without a number: until no job is queued or tracking (at most 60 s)
    expect TEXT             some bot output since the last command or click contains TEXT
                            (waits up to the expect timeout, 20 s, for background output)
    expect-error TEXT       the last command or click was refused (see below) with TEXT in the reply
    set available-after S   how long new images stay pending (default 4 s)
    set expect-timeout S    how long `expect` waits
    help, quit              (`/ami help` is the bot's help); `# ...` is a comment

`${NAME}` in any line is replaced: an instance name (`${web-1}`) by its id, a seeded image
(`${web-golden-16d}`: family and age; `${web-golden-16d@eu-west-1}` outside us-east-1; `images`
shows them all) by its AMI id, `${job}` and `${ami}` by the last job id and AMI id the bot
mentioned. TEXT may be quoted. `expect` matches the text as shown (`@alice`, not `<@UALICE>`).

A refusal is a reply only the asker sees that starts with ⚠️, ❌, ⛔ or 🚫: the acknowledgement
itself, or (for checks the bot makes after the ack, and for clicks) a later ephemeral reply;
`expect-error` waits for the latter like `expect` does.

In a script a step fails when: the acknowledgement of a command refuses it and the next line
is not `expect-error` (only `expect` lines may come between); an `expect` or `expect-error` is
not met; a line is not understood; or anything raises. The run stops at the first failure and
ends with one summary line naming the failing line: exit 0 when every step passed, 1 when one
failed, 2 when the script cannot be read or the demo cannot start, 130 on Ctrl-C.

Modules: `main` (start, stop, play, the prompt), `session` (the lines), `slack` (the fake
workspace, rendering what the bot sends, signed requests), `render` (Block Kit as text),
`aws` (moto, the environment, pending images), `seed` (the example account).
"""
