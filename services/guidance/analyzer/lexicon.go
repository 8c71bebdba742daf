package analyzer

// The lexicons of the built-in analyzer. README.md lists them with the rules that use them; keep the
// two in step. Phrases are in tokenized form: lower case, apostrophes dropped ("dont"), "*" for one to
// eight tokens of the same sentence. The tables are built once and only read afterwards.

// stopwords are function words, fillers and contractions: not content words.
var stopwords = newWordSet(
	"a", "about", "above", "after", "again", "against", "ah", "all", "almost", "already", "also", "am",
	"an", "and", "another", "any", "anyway", "are", "arent", "around", "as", "at", "away", "back", "be",
	"became", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can",
	"cant", "come", "could", "couldnt", "did", "didnt", "do", "does", "doesnt", "doing", "done", "dont",
	"down", "during", "each", "either", "else", "even", "ever", "every", "few", "for", "from", "get",
	"gets", "getting", "go", "goes", "going", "gonna", "got", "gotta", "had", "hadnt", "has", "hasnt",
	"have", "havent", "having", "he", "hed", "hell", "her", "here", "hers", "herself", "hes", "hey",
	"him", "himself", "his", "hmm", "how", "hows", "i", "id", "if", "ill", "im", "in", "into", "is",
	"isnt", "it", "itd", "itll", "its", "itself", "ive", "just", "kind", "kinda", "know", "let", "lets",
	"like", "lot", "lots", "made", "make", "makes", "many", "may", "maybe", "me", "mean", "might",
	"mine", "more", "most", "much", "must", "mustnt", "my", "myself", "need", "no", "nope", "nor",
	"not", "now", "of", "off", "oh", "ok", "okay", "on", "once", "one", "only", "or", "other", "our",
	"ours", "ourselves", "out", "over", "own", "part", "pretty", "probably", "put", "quite", "rather",
	"really", "right", "said", "same", "say", "says", "see", "she", "shed", "shell", "shes", "should",
	"shouldnt", "so", "some", "sort", "sorta", "still", "stuff", "such", "sure", "take", "than",
	"that", "thatd", "thatll", "thats", "the", "their", "theirs", "them", "themselves", "then",
	"there", "theres", "these", "they", "theyd", "theyll", "theyre", "theyve", "thing", "things",
	"think", "this", "those", "though", "through", "to", "too", "totally", "uh", "um", "umm", "under",
	"until", "up", "us", "very", "wait", "wanna", "want", "was", "wasnt", "way", "we", "wed", "well",
	"went", "were", "weve", "werent", "what", "whatever", "whats", "when", "where", "wheres",
	"whether", "which", "while", "who", "whod", "whole", "whom", "whos", "why", "will", "with", "wont",
	"would", "wouldnt", "yeah", "yep", "yes", "yet", "you", "youd", "youll", "your", "youre",
	"yours", "yourself", "yourselves", "youve", "guess", "guys", "mhm", "uhh",
)

// objectiveGeneric are words of how objectives are phrased ("Students will explain how ...") that say
// nothing about their topic. They are left out of the objective vector and the keyword set (stems).
var objectiveGeneric = stemSet(objectiveGenericWords...)

var objectiveGenericWords = []string{
	"student", "students", "learner", "learners", "will", "able", "explain", "describe", "identify",
	"understand", "understanding", "learn", "learning", "compare", "contrast", "discuss", "analyze",
	"analyse", "evaluate", "apply", "demonstrate", "define", "list", "summarize", "summarise",
	"recognize", "recognise", "use", "uses", "using", "make", "makes", "role", "work", "works",
	"objective", "objectives", "lesson", "class", "group", "groups", "based", "different", "various",
	"develop", "construct", "investigate", "model", "argue", "support", "claim", "claims",
}

// commonLong are long words too common to be domain concepts ("conceptual density", long-word rule).
var commonLong = newWordSet(
	"something", "everything", "anything", "nothing", "everyone", "everybody", "someone", "somebody",
	"anyone", "anybody", "basically", "actually", "literally", "probably", "definitely", "obviously",
	"seriously", "honestly", "yesterday", "tomorrow", "whatever", "whenever", "wherever", "different",
	"understand", "understanding", "because", "question", "questions", "remember", "important",
	"interesting", "supposed", "confused", "confusing", "together", "sometimes", "especially",
	"otherwise", "therefore", "according", "example", "examples", "everywhere", "somewhere",
	"already", "another", "completely", "exactly", "totally", "really", "without", "whatsoever",
	"absolutely", "apparently", "assignment", "worksheet", "teacher", "minutes", "wondering",
)

// offTaskWords are words of talk unrelated to class work (entertainment, social plans, food, phones).
// A sentence containing one and sharing nearly nothing with the objectives is off-task.
var offTaskWords = newWordSet(
	"game", "games", "gaming", "gamer", "fortnite", "minecraft", "roblox", "xbox", "playstation", "ps5",
	"nintendo", "controller", "youtube", "youtuber", "tiktok", "tiktoks", "instagram",
	"snapchat", "discord", "twitch", "streamer", "streaming", "netflix", "movie",
	"movies", "episode", "anime", "cartoon", "meme", "memes", "phone", "phones", "texted", "texting", "weekend", "saturday", "sunday", "friday", "tonight", "party",
	"sleepover", "birthday", "lunch", "recess", "cafeteria", "pizza", "fries", "burger", "snack",
	"snacks", "candy", "chips", "soda", "mall", "shopping", "shoes", "sneakers", "hoodie", "outfit",
	"song", "songs", "music", "concert", "album", "rapper", "singer", "basketball", "football",
	"soccer", "baseball", "volleyball", "hockey", "nba", "nfl", "crush", "dating", "boyfriend",
	"girlfriend", "lol", "lmao", "omg", "bruh", "bro", "dude", "skibidi", "rizz", "bored", "boring",
	"funny", "hilarious", "vbucks", "skins", "pokemon", "vacation", "holiday",
)

// offTaskPhrases are multi-word off-task cues.
var offTaskPhrases = newMatcher(
	"last night", "after school", "this weekend", "next weekend", "did you see", "did you watch",
	"are you going to", "wanna play", "want to play", "play with", "hang out", "so funny",
)

// hedges soften a statement (hedge_rate).
var hedges = newMatcher(
	"maybe", "perhaps", "probably", "possibly", "i think", "i guess", "i suppose", "kind of", "kinda",
	"sort of", "sorta", "might", "not sure", "im not sure", "i feel like", "could be", "it could",
	"seems like", "it seems", "somewhat", "not really sure", "or something",
)

// confusionPhrases are markers of confusion (confusion_markers).
var confusionPhrases = newMatcher(
	"i dont get", "i do not get", "dont get it", "i dont understand", "i do not understand",
	"dont understand", "doesnt make sense", "does not make sense", "makes no sense", "confused",
	"confusing", "im lost", "i am lost", "what does * mean", "what do you mean", "what is * supposed to",
	"wait what", "i have no idea", "no idea", "no clue", "i dont know", "i do not know", "i dunno",
	"im stuck", "i am stuck", "were stuck", "i dont even know", "how does that even", "huh",
	"lost me", "i dont remember",
)

// uptakePhrases say a turn builds on another's idea (uptake).
var uptakePhrases = newMatcher(
	"building on", "build on", "to build on", "i agree", "agree with", "i disagree", "disagree with",
	"like * said", "as * said", "what * said", "you said", "he said", "she said", "to add to",
	"adding to", "add on", "going back to", "good point", "good idea", "thats true", "yes and",
	"yeah and", "so youre saying", "piggyback", "on top of what", "same as", "thats right but",
	"i see what you mean", "that makes sense",
)

// openQuestionCues make a question focusing (open): it asks for reasoning, not a given answer.
var openQuestionCues = newMatcher(
	"why", "how come", "how do", "how does", "how did", "how would", "how can", "how could", "how is",
	"how are", "how will", "how might", "what if", "what do you think", "what would happen",
	"what happens", "what makes", "what else", "what is the difference", "whats the difference",
	"how do you know", "what evidence", "explain", "what would", "what could", "in what way",
	"what do we think", "what are your thoughts",
)

// tagQuestionEndings make a question funneling when they end it ("..., right?").
var tagQuestionEndings = [][]string{
	{"right"}, {"correct"}, {"yeah"}, {"ok"}, {"okay"}, {"true"}, {"yes"}, {"isnt", "it"},
	{"arent", "they"}, {"dont", "they"}, {"doesnt", "it"}, {"dont", "you", "think"},
	{"wouldnt", "it"}, {"isnt", "that"}, {"didnt", "it"}, {"dont", "we"}, {"wasnt", "it"},
}

// yesNoStarters open a closed (yes/no or either/or) question.
var yesNoStarters = newWordSet(
	"is", "are", "am", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should",
	"shall", "has", "have", "had", "isnt", "arent", "wasnt", "werent", "dont", "doesnt", "didnt",
	"cant", "couldnt", "wont", "wouldnt", "shouldnt", "hasnt", "havent", "its", "thats",
)

// whWords open a question that is neither clearly open nor closed ("what is it called?").
var whWords = newWordSet("what", "which", "who", "whom", "whose", "where", "when", "whats", "wheres",
	"whos", "how")

// leadIns are skipped before a question's first word ("so, is it ...?").
var leadIns = newWordSet("so", "but", "and", "wait", "ok", "okay", "um", "uh", "umm", "like", "well",
	"then", "hey", "oh", "guys", "yeah", "hmm", "also", "now", "actually")

// claimMarkers state a position (Tier 2 argumentation: claims).
var claimMarkers = newMatcher(
	"i think", "i believe", "we think", "we believe", "the answer is", "should", "i would say",
	"my idea is", "in my opinion", "i claim", "our claim", "it has to be", "it must be", "i bet",
	"i know", "its because", "i agree", "i disagree",
)

// evidenceMarkers back a position (argumentation: evidence). Tokens with digits and "percent" also
// count as evidence (numbers are usually data).
var evidenceMarkers = newMatcher(
	"because", "for example", "for instance", "the data shows", "the data", "the graph", "the chart",
	"according to", "since", "we saw", "we observed", "in the experiment", "the experiment",
	"the text says", "the article", "the book says", "the video showed", "it says", "evidence",
	"proves", "shows that", "showed that", "like when", "percent", "we measured", "in the lab",
)

// reasoningMarkers connect evidence to a claim (argumentation: reasoning).
var reasoningMarkers = newMatcher(
	"therefore", "so that means", "that means", "which means", "this means", "it means", "if * then",
	"if * would", "thats why", "that is why", "which is why", "as a result", "causes", "caused by",
	"leads to", "so then", "because of that", "that explains", "otherwise", "it follows",
	"so if", "which makes", "which causes", "depends on", "that would mean",
)

// correctionPhrases surface a misconception being challenged or corrected (Tier 2 learning signal).
var correctionPhrases = newMatcher(
	"thats not right", "thats wrong", "that is wrong", "thats not true", "not true", "no actually",
	"actually its", "actually it", "i thought", "isnt it the other way", "the other way around",
	"thats a misconception", "no wait", "not exactly", "i used to think", "but that doesnt",
)

// stemSet stems and collects words.
func stemSet(words ...string) wordSet {
	s := make(wordSet, len(words))
	for _, w := range words {
		s[stem(w)] = struct{}{}
	}
	return s
}
