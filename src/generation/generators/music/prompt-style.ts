/** Every instrument the synthesizer can play, in the order styles list them. */
export const INSTRUMENTS = [
  'piano',
  'pad',
  'pluck',
  'bass',
  'lead',
  'flute',
  'bells',
  'drums',
] as const;
export type Instrument = (typeof INSTRUMENTS)[number];
export type Mode = 'major' | 'minor';

export interface MusicStyle {
  tempoBpm: number;
  mode: Mode;
  instruments: readonly Instrument[];
}

interface WordHint {
  tempo?: number;
  mode?: Mode;
  instruments?: readonly Instrument[];
}

const DEFAULT_TEMPO = 100;
const DEFAULT_MODE: Mode = 'major';
const DEFAULT_INSTRUMENTS: readonly Instrument[] = ['piano', 'pad', 'bass', 'drums'];
const MIN_BPM = 40;
const MAX_BPM = 220;

const dance: WordHint = { tempo: 126, instruments: ['drums', 'bass', 'lead'] };

// A Map rather than an object literal, so words like "constructor" find nothing.
const WORDS = new Map<string, WordHint>(
  Object.entries({
    // Tempo
    slow: { tempo: 68 },
    calm: { tempo: 72 },
    relaxing: { tempo: 72 },
    relaxed: { tempo: 72 },
    peaceful: { tempo: 70 },
    gentle: { tempo: 76 },
    soft: { tempo: 76 },
    dreamy: { tempo: 72 },
    sleepy: { tempo: 60 },
    chill: { tempo: 84 },
    fast: { tempo: 150 },
    quick: { tempo: 144 },
    energetic: { tempo: 140 },
    upbeat: { tempo: 128 },
    driving: { tempo: 132 },
    intense: { tempo: 140 },
    // Mood
    happy: { mode: 'major' },
    bright: { mode: 'major' },
    sunny: { mode: 'major' },
    joyful: { mode: 'major' },
    cheerful: { mode: 'major' },
    uplifting: { mode: 'major' },
    hopeful: { mode: 'major' },
    playful: { mode: 'major' },
    major: { mode: 'major' },
    sad: { mode: 'minor' },
    dark: { mode: 'minor' },
    melancholic: { mode: 'minor' },
    melancholy: { mode: 'minor' },
    moody: { mode: 'minor' },
    gloomy: { mode: 'minor' },
    somber: { mode: 'minor' },
    sombre: { mode: 'minor' },
    mysterious: { mode: 'minor' },
    eerie: { mode: 'minor' },
    spooky: { mode: 'minor' },
    minor: { mode: 'minor' },
    // Instruments
    piano: { instruments: ['piano'] },
    keys: { instruments: ['piano'] },
    rhodes: { instruments: ['piano'] },
    pad: { instruments: ['pad'] },
    string: { instruments: ['pad'] },
    violin: { instruments: ['pad'] },
    cello: { instruments: ['pad'] },
    choir: { instruments: ['pad'] },
    guitar: { instruments: ['pluck'] },
    harp: { instruments: ['pluck'] },
    pluck: { instruments: ['pluck'] },
    bass: { instruments: ['bass'] },
    lead: { instruments: ['lead'] },
    synth: { instruments: ['lead'] },
    chiptune: { instruments: ['lead'] },
    flute: { instruments: ['flute'] },
    whistle: { instruments: ['flute'] },
    woodwind: { instruments: ['flute'] },
    bell: { instruments: ['bells'] },
    chime: { instruments: ['bells'] },
    glockenspiel: { instruments: ['bells'] },
    celesta: { instruments: ['bells'] },
    drum: { instruments: ['drums'] },
    percussion: { instruments: ['drums'] },
    beat: { instruments: ['drums'] },
    // Genres: a tempo and a band
    ambient: { tempo: 66, instruments: ['pad', 'bells'] },
    lullaby: { tempo: 60, instruments: ['bells', 'pad'] },
    orchestral: { instruments: ['pad', 'flute'] },
    cinematic: { instruments: ['pad', 'piano', 'drums'] },
    jazz: { tempo: 112, instruments: ['piano', 'bass', 'drums'] },
    lofi: { tempo: 80, instruments: ['piano', 'bass', 'drums'] },
    rock: { tempo: 120, instruments: ['drums', 'bass', 'pluck'] },
    techno: { ...dance, tempo: 130 },
    house: dance,
    dance,
    edm: dance,
    disco: { ...dance, tempo: 118 },
  } satisfies Record<string, WordHint>),
);

function hintFor(word: string): WordHint | undefined {
  // Plurals: "drums", "strings", "bells".
  return WORDS.get(word) ?? (word.endsWith('s') ? WORDS.get(word.slice(0, -1)) : undefined);
}

/**
 * Chooses tempo, scale and band from the words of a prompt. An explicit "N bpm" sets the tempo;
 * otherwise tempo words are averaged. Mood words vote for major or minor.
 */
export function styleFromPrompt(prompt: string): MusicStyle {
  const text = prompt.toLowerCase();
  const hints = (text.match(/[a-z]+/g) ?? []).flatMap((word) => hintFor(word) ?? []);

  const tempos = hints.flatMap((hint) => hint.tempo ?? []);
  const explicitBpm = /(\d+(?:\.\d+)?)\s*bpm\b/.exec(text)?.[1];
  const tempo =
    explicitBpm !== undefined
      ? Number(explicitBpm)
      : tempos.length > 0
        ? tempos.reduce((sum, t) => sum + t, 0) / tempos.length
        : DEFAULT_TEMPO;

  const modeVotes = hints.reduce(
    (votes, hint) => votes + (hint.mode === 'major' ? 1 : hint.mode === 'minor' ? -1 : 0),
    0,
  );

  const named = new Set(hints.flatMap((hint) => hint.instruments ?? []));
  const instruments =
    named.size > 0 ? INSTRUMENTS.filter((i) => named.has(i)) : DEFAULT_INSTRUMENTS;

  return {
    tempoBpm: Math.min(MAX_BPM, Math.max(MIN_BPM, Math.round(tempo))),
    mode: modeVotes > 0 ? 'major' : modeVotes < 0 ? 'minor' : DEFAULT_MODE,
    instruments,
  };
}
