"""DSP benchmark: real-time factor per line and DTMF talk-off on speech.

``run(quick=False)`` returns a dict (``make bench`` writes it to
bench/results.json):

* ``realtime_factor``: seconds of line audio processed per CPU second by one
  :class:`~firmware.dsp.detector.LineDsp` (DTMF + caller ID + tones), fed in
  20 ms blocks like the supervisor does, over a mixed stream: on-hook idle
  line with UK caller-ID sequences, and off-hook speech with dialling and
  call-progress tones.  Also per part, and (for information) an on-hook line
  with -30 dBm0 of noise, which keeps the FSK demodulator running.  Target
  ≥ 2000.
* ``talkoff_per_hour``: false DTMF digits per hour of speech fed to the
  off-hook (dialled digits) path at -10 … -25 dBm0.  Target ≤ 5.  The speech is
  espeak-ng in several languages, voices, speeds and pitches (random sentences
  from small per-language vocabularies, numbers included), cached under
  bench/.cache/ (gitignored).  Also false call-progress tones per hour.

``quick=True`` uses about 4 minutes of speech instead of 40 and says so in
the result (``"quick": true``).
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import wave

import numpy as np

from firmware.dsp.detector import LineDsp
from firmware.dsp.events import DtmfDigit, Tone
from telephony import generate as gen

CACHE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache", "speech")

# Small vocabularies: common words and number words, so the speech has the
# phonetics (and the spoken digits) of real calls.
WORDS = {
    "en": "hello good morning thank you very much please call me back tomorrow about the order number "
    "invoice account delivery address postcode street road meeting office manager Monday Friday "
    "zero oh one two three four five six seven eight nine ten twenty hundred thousand pounds "
    "yes no sorry could would should really great problem appointment doctor weather sunny rain "
    "children school holiday train station minutes half past quarter lovely cheers bye",
    "en-us": "hi there how are you doing today this is calling from the bank about your card "
    "payment dollars cents check zip code apartment number street avenue Tuesday Thursday "
    "zero one two three four five six seven eight nine eleven twelve thirty fifty hundred "
    "okay sure awesome totally insurance claim reference schedule pickup downtown weekend",
    "de": "guten Tag hallo ich rufe wegen der Rechnung an bitte rufen Sie mich morgen zurück "
    "Bestellung Kundennummer Lieferung Adresse Straße Postleitzahl Termin Büro Montag Freitag "
    "null eins zwei drei vier fünf sechs sieben acht neun zehn zwanzig hundert tausend Euro "
    "ja nein Entschuldigung vielleicht wirklich Wetter Regen Kinder Schule Urlaub Bahnhof tschüss",
    "fr": "bonjour allô je vous appelle au sujet de la facture pouvez vous me rappeler demain "
    "commande numéro client livraison adresse rue code postal rendez vous bureau lundi vendredi "
    "zéro un deux trois quatre cinq six sept huit neuf dix vingt cent mille euros "
    "oui non pardon peut être vraiment temps pluie enfants école vacances gare au revoir merci",
    "es": "hola buenos días le llamo por la factura puede llamarme mañana por favor pedido "
    "número de cliente entrega dirección calle código postal cita oficina lunes viernes "
    "cero uno dos tres cuatro cinco seis siete ocho nueve diez veinte cien mil euros "
    "sí no perdón quizás de verdad tiempo lluvia niños escuela vacaciones estación adiós gracias",
    "it": "buongiorno pronto la chiamo per la fattura può richiamarmi domani per favore ordine "
    "numero cliente consegna indirizzo via codice postale appuntamento ufficio lunedì venerdì "
    "zero uno due tre quattro cinque sei sette otto nove dieci venti cento mille euro "
    "sì no scusi forse davvero tempo pioggia bambini scuola vacanze stazione arrivederci grazie",
    "pl": "dzień dobry dzwonię w sprawie faktury proszę oddzwonić jutro zamówienie numer klienta "
    "dostawa adres ulica kod pocztowy spotkanie biuro poniedziałek piątek "
    "zero jeden dwa trzy cztery pięć sześć siedem osiem dziewięć dziesięć dwadzieścia sto tysiąc "
    "tak nie przepraszam może naprawdę pogoda deszcz dzieci szkoła wakacje dworzec do widzenia dziękuję",
    "nl": "goedemiddag ik bel over de factuur kunt u mij morgen terugbellen bestelling klantnummer "
    "levering adres straat postcode afspraak kantoor maandag vrijdag nul een twee drie vier vijf "
    "zes zeven acht negen tien twintig honderd duizend ja nee sorry misschien weer regen dank u wel",
}
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "croak", "klatt"]
SPEECH_SECONDS = {False: 40 * 60, True: 4 * 60}
UTTERANCE_WORDS = 60


def _espeak(text, voice, speed, pitch, path):
    """Synthesise ``text`` to an 8 kHz mono 16-bit WAV at ``path`` (espeak-ng + sox)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "speech.wav")
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", raw, text],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["sox", raw, "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "wav", path],
            check=True,
            capture_output=True,
        )


def _read_wav(path):
    with wave.open(path, "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def speech_corpus(seconds, seed=1):
    """Yield (description, int16 audio) utterances until ``seconds`` of speech; cached on disk.

    Raises RuntimeError if espeak-ng or sox is missing (scripts/install-deps).
    """
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError("%s is needed for the talk-off benchmark: run scripts/install-deps" % tool)
    os.makedirs(CACHE_DIR, exist_ok=True)
    rng = np.random.default_rng(seed)
    langs = sorted(WORDS)
    total = 0.0
    i = 0
    while total < seconds:
        lang = langs[i % len(langs)]
        words = WORDS[lang].split()
        text = " ".join(rng.choice(words, UTTERANCE_WORDS))
        # punctuation gives the voice sentence prosody
        text = ". ".join(text[k : k + 70] for k in range(0, len(text), 70))
        voice = "%s+%s" % (lang, VARIANTS[int(rng.integers(len(VARIANTS)))])
        speed = int(rng.integers(120, 220))
        pitch = int(rng.integers(20, 80))
        key = hashlib.sha1(("%s|%s|%d|%d" % (text, voice, speed, pitch)).encode()).hexdigest()[:16]
        path = os.path.join(CACHE_DIR, key + ".wav")
        if not os.path.exists(path):
            _espeak(text, voice, speed, pitch, path + ".tmp")
            os.replace(path + ".tmp", path)
        audio = _read_wav(path)
        total += len(audio) / 8000.0
        i += 1
        yield "%s %s s%d p%d" % (lang, voice, speed, pitch), audio


def talkoff(seconds, seed=1):
    """False DTMF digits and tones on ``seconds`` of speech fed off-hook at -10 … -25 dBm0."""
    rng = np.random.default_rng(seed)
    digits, tones, total = [], [], 0.0
    for country in ("uk", "us"):
        events = []
        dsp = LineDsp(country, on_event=events.append, off_hook=True)
        t_us = 0
        for _desc, audio in speech_corpus(seconds / 2, seed=seed + (country == "us")):
            level = float(rng.uniform(-25, -10))
            audio = gen.scale_to_dbm0(_active(audio), level)
            pause = gen.silence(float(rng.uniform(200, 800)))
            for chunk in (audio, pause):
                for k in range(0, len(chunk), 160):
                    dsp.feed(chunk[k : k + 160], t_us)
                    t_us += len(chunk[k : k + 160]) * 125
        dsp.flush()
        total += t_us / 1e6
        digits += [e for e in events if isinstance(e, DtmfDigit)]
        tones += [(country, e.name) for e in events if isinstance(e, Tone)]
    hours = total / 3600.0
    return {
        "speech_minutes": round(total / 60.0, 1),
        "talkoff_digits": len(digits),
        "talkoff_per_hour": round(len(digits) / hours, 2),
        "talkoff_digit_list": "".join(e.digit for e in digits),
        "false_tones": len(tones),
        "false_tones_per_hour": round(len(tones) / hours, 2),
    }


def _active(audio):
    """Trim leading/trailing silence so the level applies to the speech itself."""
    loud = np.flatnonzero(np.abs(audio) > 300)
    return audio[loud[0] : loud[-1] + 1] if len(loud) else audio


def _day_stream(minutes, seed=2):
    """A mixed stream: (on-hook part, off-hook part) as int16 arrays of ``minutes`` each."""
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * 8000)
    on_hook = gen.white_noise(n, -65, seed=seed)
    pos = 8000 * 5
    while pos < n - 8000 * 10:
        burst = gen.concat(
            gen.alert_tone(-13, 100),
            gen.silence(60),
            gen.caller_id("v23", number="01632960123", name="ACME LTD", datetime="03020900"),
        )
        on_hook[pos : pos + len(burst)] += burst
        pos += int(rng.integers(30, 90)) * 8000
    parts, total = [], 0
    speech = [a for _d, a in speech_corpus(60, seed=seed)]
    while total < n:
        a = speech[int(rng.integers(len(speech)))]
        parts += [
            gen.dtmf("01632960123", -6),
            gen.scale_to_dbm0(a, float(rng.uniform(-25, -10))),
            gen.call_progress("busy", "uk", 2000),
        ]
        total += sum(len(p) for p in parts[-3:])
    off_hook = gen.mix(np.concatenate(parts)[:n], gen.white_noise(n, -60, seed=seed + 1))
    return on_hook, off_hook


def _cpu_seconds(audio, off_hook, block, repeats=3):
    """Best-of-``repeats`` CPU time of one LineDsp on ``audio`` fed ``block`` samples at a time.

    The best run is the one least disturbed by other work on the machine.
    """
    best = float("inf")
    for _ in range(repeats):
        dsp = LineDsp("uk", off_hook=off_hook)
        t0 = time.process_time()
        for k in range(0, len(audio), block):
            dsp.feed(audio[k : k + block], k * 125)
        dsp.flush()
        best = min(best, time.process_time() - t0)
    return best


def realtime(minutes, block=160):
    """Real-time factor of one LineDsp on the mixed stream, fed 20 ms at a time."""
    on_hook, off_hook = _day_stream(minutes)
    result = {}
    cpu_total = 0.0
    for name, audio, hook in (("on_hook", on_hook, False), ("off_hook", off_hook, True)):
        cpu = _cpu_seconds(audio, hook, block)
        cpu_total += cpu
        result["realtime_factor_" + name] = round(len(audio) / 8000.0 / cpu)
    result["realtime_factor"] = round((len(on_hook) + len(off_hook)) / 8000.0 / cpu_total)
    # For information: fed 1 s at a time, and the worst case, an on-hook line
    # with -30 dBm0 of noise that keeps the FSK demodulator busy all the time.
    cpu = _cpu_seconds(on_hook, False, 8000) + _cpu_seconds(off_hook, True, 8000)
    result["realtime_factor_1s_blocks"] = round((len(on_hook) + len(off_hook)) / 8000.0 / cpu)
    noisy = gen.white_noise(len(on_hook) // 4, -30, seed=9)
    result["realtime_factor_on_hook_noisy_line"] = round(
        len(noisy) / 8000.0 / _cpu_seconds(noisy, False, block)
    )
    return result


def run(quick=False):
    """Run the DSP benchmarks; see the module docstring for the keys."""
    result = {"quick": bool(quick), "targets": {"realtime_factor": 2000, "talkoff_per_hour": 5}}
    result.update(realtime(2 if quick else 10))
    result.update(talkoff(SPEECH_SECONDS[bool(quick)]))
    return result


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
