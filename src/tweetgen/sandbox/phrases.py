"""The offline composer's sentences, per tone: openers and short forms about the topic, closers and
whole short sentences without it, and the emoji it may add.

Every sentence is whole (it ends in ``.``, ``!`` or ``?``); ``{topic}`` marks where the topic goes.
"""

from __future__ import annotations

__all__ = ["CLOSERS", "EMOJI", "OPENERS", "SHORT", "TOPIC_SHORT"]

# Sentences about the topic, per tone: the first sentence of a tweet.
OPENERS: dict[str, tuple[str, ...]] = {
    "professional": (
        "{topic} is reshaping how teams deliver value.",
        "Leaders who invest in {topic} today will set the standard tomorrow.",
        "Three things every team should know about {topic}: start small, measure, iterate.",
        "{topic} rewards teams that plan before they build.",
        "The best teams treat {topic} as a long-term investment.",
        "Getting {topic} right is a real competitive advantage.",
    ),
    "casual": (
        "Been diving into {topic} lately and honestly it's so much fun.",
        "Okay, {topic} is kind of my new favourite thing.",
        "Weekend plan: coffee, snacks and way too much {topic}.",
        "Can we talk about {topic} for a second?",
        "Spent the whole evening on {topic} again, no regrets.",
        "Anyone else totally hooked on {topic} right now?",
    ),
    "witty": (
        "{topic}: because doing things the hard way was getting boring.",
        "My relationship status? Complicated. With {topic}.",
        "I asked {topic} for a favour and now it runs my calendar.",
        "{topic} walked in and my to-do list walked out.",
        "Some people have hobbies. I have {topic}.",
        "Therapist: and how does {topic} make you feel?",
    ),
    "inspirational": (
        "Every expert in {topic} was once a beginner who kept going.",
        "Small steps in {topic} add up to giant leaps.",
        "Your journey with {topic} starts with one brave first try.",
        "Believe in the progress you make with {topic} every day.",
        "The best time to start with {topic} is today.",
        "Dream big about {topic}, then take the first step.",
    ),
    "informative": (
        "Quick fact: {topic} works best when you understand the basics first.",
        "New to {topic}? Begin with the fundamentals, then practise daily.",
        "{topic} in one line: learn the core ideas, apply them, repeat.",
        "The key to {topic} is steady practice and honest feedback.",
        "Most mistakes with {topic} come from skipping the basics.",
        "A good first step with {topic}: read the official guide.",
    ),
}
# Short sentences about the topic: the first sentence when no opener fits.
TOPIC_SHORT: dict[str, tuple[str, ...]] = {
    "professional": ("{topic}.", "{topic} matters.", "Invest in {topic}.", "Focus on {topic}."),
    "casual": ("{topic}!", "Loving {topic}!", "{topic}, anyone?", "So much {topic}!"),
    "witty": ("{topic}?", "{topic}. Obviously.", "Send help: {topic}.", "{topic} strikes again!"),
    "inspirational": (
        "{topic}!",
        "Start {topic} today!",
        "Believe in {topic}.",
        "Keep going with {topic}!",
    ),
    "informative": (
        "{topic}.",
        "{topic}, explained.",
        "Learn {topic} well.",
        "{topic}: start here.",
    ),
}
# Sentences without the topic, 3 to 7 words: a second sentence, or the tweet when no topic sentence
# fits.
CLOSERS: dict[str, tuple[str, ...]] = {
    "professional": (
        "What is your take?",
        "Keep learning, keep building.",
        "Worth your time this week.",
        "Share it with someone who needs it.",
        "Measure what matters most.",
        "Progress beats perfection every time.",
    ),
    "casual": (
        "What do you think?",
        "Seriously, try it this weekend.",
        "Totally worth it, trust me.",
        "Tell me I'm not alone here.",
        "Best decision I made all week.",
        "Send snacks, I'm busy.",
    ),
    "witty": (
        "No regrets, mostly.",
        "My plants are jealous.",
        "Productivity has left the chat.",
        "Send coffee and patience.",
        "Ask me how I know.",
        "It seemed like a good idea.",
    ),
    "inspirational": (
        "Keep going, you are closer than you think.",
        "Your future self will thank you.",
        "Start where you are today.",
        "Every small win counts.",
        "Progress, not perfection.",
        "You have got this.",
    ),
    "informative": (
        "Save this for later.",
        "Bookmark it for your next project.",
        "Practice beats theory here.",
        "Start with the official documentation.",
        "Small experiments teach the most.",
        "Measure before you optimise.",
    ),
}
# Whole sentences of 1 to 3 words without the topic: the tweet when the limit leaves no room for
# more.
SHORT: dict[str, tuple[str, ...]] = {
    "professional": (
        "Noted.",
        "Agreed.",
        "Onward.",
        "Exactly.",
        "Precisely.",
        "Understood.",
        "Indeed.",
        "Well said.",
        "Stay focused.",
        "Quality matters.",
        "Start small today.",
        "Measure, then improve.",
    ),
    "casual": (
        "Yes!",
        "Wow!",
        "Nice!",
        "Yep!",
        "Love it!",
        "So good!",
        "Honestly, same.",
        "Totally!",
        "Big fan!",
        "Cannot stop.",
        "Try it!",
        "This is fun!",
    ),
    "witty": (
        "Naturally.",
        "Obviously.",
        "Classic.",
        "Shocking.",
        "Yikes!",
        "Plot twist!",
        "Send help.",
        "Totally fine.",
        "Nailed it, mostly.",
        "Oops!",
        "Worth it.",
    ),
    "inspirational": (
        "Believe!",
        "Begin!",
        "Persevere!",
        "Rise!",
        "Dream!",
        "Keep going!",
        "Dream big.",
        "Rise up!",
        "Never stop.",
        "You can.",
        "Start today!",
        "One step further.",
    ),
    "informative": (
        "Fact.",
        "Essential.",
        "Useful.",
        "Noteworthy.",
        "Interesting.",
        "Learn more.",
        "Read the docs.",
        "Practise daily.",
        "Basics first.",
        "Measure twice.",
        "Try it yourself.",
        "Know the basics.",
    ),
}
EMOJI = ("\U0001f680", "\u2728", "\U0001f4a1")
