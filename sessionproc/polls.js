// Votes on polls, reported to the session as whatsapp-web.js 1.34.7 finds
// them for its vote_update: the page stores every vote it learns of (a
// phone's, the account's own) through its poll vote table's bulkUpsert,
// and whatsapp-web.js wraps that function; so do we.  Each vote names its
// poll's key and the `localId`s of the options now chosen; the names come
// from the poll, found as whatsapp-web.js finds it (in memory, then in the
// page's store).  A page without the table sends and receives messages all
// the same: votes are then not reported, and the session logs why.
// Loaded between receipts.js and hook.js inside one function (see
// pagescripts.hook_source); hook.js calls listenForVotes once it has attached.

function listenForVotes(req, emit, otherIdOf) {
  let table = null;
  try { table = req('WAWebAddonPollVoteTableMode').pollVoteTableMode; } catch (e) { /* not on this page */ }
  if (!table || typeof table.bulkUpsert !== 'function') {
    emit({ type: 'error', reason: 'poll_votes_unavailable',
           detail: 'WAWebAddonPollVoteTableMode.pollVoteTableMode.bulkUpsert is missing' });
    return;
  }
  const original = table.bulkUpsert;
  table.bulkUpsert = function (...args) {
    for (const vote of (Array.isArray(args[0]) ? args[0] : [])) {
      voteReport(req, vote, otherIdOf).then(emit,
        (e) => emit({ type: 'error', reason: 'poll_vote_unreadable', detail: String(e) }));
    }
    return original.apply(this, args);
  };
}

// One vote as the session reports it: `selected` the chosen options' names,
// null when the page no longer holds the poll (`selected_ids` still say
// which: a poll's options are numbered from 0, in the order sent).
async function voteReport(req, vote, otherIdOf) {
  const pollId = widString(vote.pollUpdateParentKey);
  const Msg = req('WAWebCollections').Msg;
  let poll = Msg.get(pollId);
  if (!poll && typeof Msg.getMessagesById === 'function') {
    const found = await Msg.getMessagesById([pollId]);
    poll = found && found.messages && found.messages[0];
  }
  const ids = Array.from(vote.selectedOptionLocalIds || [], Number);
  const options = poll && Array.isArray(poll.pollOptions) ? poll.pollOptions : null;
  const selected = options
    ? ids.map((i) => { const option = options.find((o) => o.localId === i); return option ? option.name : null; })
    : null;
  const sender = vote.author || vote.from;
  const voter = widString(sender) ?? null;
  const report = { type: 'poll_vote', message_id: pollId, voter, selected, selected_ids: ids };
  const server = typeof voter === 'string' ? voter.slice(voter.lastIndexOf('@') + 1) : '';
  if (server === 'lid' || server === 'c.us') {
    let other = null;
    try { other = otherIdOf(sender); } catch (e) { /* reported without it, as the page gave it */ }
    if (typeof other === 'string' && other && other !== voter) report[server === 'lid' ? 'voter_pn' : 'voter_lid'] = other;
  }
  return report;
}
