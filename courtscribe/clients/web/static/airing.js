// What the caption overlay has aired, so a reconnect airs no line twice: the server's new feed cuts
// an utterance's settled words into lines again from its start.
const MARK = "[\\s，。、；：,.;:！？!?]"; // what a line may keep or drop around its words
const MARKS = new RegExp(MARK, "g");
const LEADING = new RegExp(`^${MARK}+`);
const letters = (s) => s.replace(MARKS, "");
const KEPT = 64; // utterances remembered (a few channels' worth of recent speech)

export class Airing {
  constructor() {
    this.aired = new Map(); // utterance → the letters of its lines, in the order they came
    this.again = new Map(); // after a reconnect: per utterance, the aired letters the new feed repeats
  }

  /** The connection is back: what was aired of each utterance may come again. */
  reconnected() { this.again = new Map(this.aired); }

  /** False for a line aired before the reconnect; a line that goes on past what was aired keeps
   * only the rest (its ``lines`` cut). Every other line is fresh. */
  fresh(cue) {
    const uid = cue.utterance_id;
    const text = cue.lines.join("");
    let l = letters(text);
    const rest = this.again.get(uid);
    if (rest !== undefined) {
      if (l && rest.startsWith(l)) { this.again.set(uid, rest.slice(l.length)); return false; }
      this.again.delete(uid); // past what was aired: from here on it is new
      if (rest && l.startsWith(rest)) {
        let i = 0;
        for (let n = 0; n < rest.length; i++) if (letters(text[i])) n++;
        cue.lines = [text.slice(i).replace(LEADING, "")];
        l = l.slice(rest.length);
      }
    }
    const before = this.aired.get(uid) || "";
    this.aired.delete(uid); // set again: the map keeps the utterances heard from last
    this.aired.set(uid, before + l);
    if (this.aired.size > KEPT) this.aired.delete(this.aired.keys().next().value);
    return true;
  }
}
