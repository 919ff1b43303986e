"""Real English local authorities (old 3-digit LA numbers) used by the generator.

The 152 LAs that returned the 2017-18 CIN census (Dorset/Poole/Bournemouth and
Northamptonshire as they were then). The generator keeps this set fixed across all
census years (no reorganisations). ``LA_ORDER`` fixes which LAs a small run uses: the
first ``n`` entries; the two planted outlier LAs sit within the first ten so that the
default ``las=10`` run contains both.
"""

from __future__ import annotations

from functools import cache

LA_NAMES: dict[str, str] = {
    "201": "City of London",
    "202": "Camden",
    "203": "Greenwich",
    "204": "Hackney",
    "205": "Hammersmith and Fulham",
    "206": "Islington",
    "207": "Kensington and Chelsea",
    "208": "Lambeth",
    "209": "Lewisham",
    "210": "Southwark",
    "211": "Tower Hamlets",
    "212": "Wandsworth",
    "213": "Westminster",
    "301": "Barking and Dagenham",
    "302": "Barnet",
    "303": "Bexley",
    "304": "Brent",
    "305": "Bromley",
    "306": "Croydon",
    "307": "Ealing",
    "308": "Enfield",
    "309": "Haringey",
    "310": "Harrow",
    "311": "Havering",
    "312": "Hillingdon",
    "313": "Hounslow",
    "314": "Kingston upon Thames",
    "315": "Merton",
    "316": "Newham",
    "317": "Redbridge",
    "318": "Richmond upon Thames",
    "319": "Sutton",
    "320": "Waltham Forest",
    "330": "Birmingham",
    "331": "Coventry",
    "332": "Dudley",
    "333": "Sandwell",
    "334": "Solihull",
    "335": "Walsall",
    "336": "Wolverhampton",
    "340": "Knowsley",
    "341": "Liverpool",
    "342": "St. Helens",
    "343": "Sefton",
    "344": "Wirral",
    "350": "Bolton",
    "351": "Bury",
    "352": "Manchester",
    "353": "Oldham",
    "354": "Rochdale",
    "355": "Salford",
    "356": "Stockport",
    "357": "Tameside",
    "358": "Trafford",
    "359": "Wigan",
    "370": "Barnsley",
    "371": "Doncaster",
    "372": "Rotherham",
    "373": "Sheffield",
    "380": "Bradford",
    "381": "Calderdale",
    "382": "Kirklees",
    "383": "Leeds",
    "384": "Wakefield",
    "390": "Gateshead",
    "391": "Newcastle upon Tyne",
    "392": "North Tyneside",
    "393": "South Tyneside",
    "394": "Sunderland",
    "420": "Isles of Scilly",
    "800": "Bath and North East Somerset",
    "801": "Bristol, City of",
    "802": "North Somerset",
    "803": "South Gloucestershire",
    "805": "Hartlepool",
    "806": "Middlesbrough",
    "807": "Redcar and Cleveland",
    "808": "Stockton-on-Tees",
    "810": "Kingston upon Hull, City of",
    "811": "East Riding of Yorkshire",
    "812": "North East Lincolnshire",
    "813": "North Lincolnshire",
    "815": "North Yorkshire",
    "816": "York",
    "821": "Luton",
    "822": "Bedford",
    "823": "Central Bedfordshire",
    "825": "Buckinghamshire",
    "826": "Milton Keynes",
    "830": "Derbyshire",
    "831": "Derby",
    "835": "Dorset",
    "836": "Poole",
    "837": "Bournemouth",
    "840": "County Durham",
    "841": "Darlington",
    "845": "East Sussex",
    "846": "Brighton and Hove",
    "850": "Hampshire",
    "851": "Portsmouth",
    "852": "Southampton",
    "855": "Leicestershire",
    "856": "Leicester",
    "857": "Rutland",
    "860": "Staffordshire",
    "861": "Stoke-on-Trent",
    "865": "Wiltshire",
    "866": "Swindon",
    "867": "Bracknell Forest",
    "868": "Windsor and Maidenhead",
    "869": "West Berkshire",
    "870": "Reading",
    "871": "Slough",
    "872": "Wokingham",
    "873": "Cambridgeshire",
    "874": "Peterborough",
    "876": "Halton",
    "877": "Warrington",
    "878": "Devon",
    "879": "Plymouth",
    "880": "Torbay",
    "881": "Essex",
    "882": "Southend-on-Sea",
    "883": "Thurrock",
    "884": "Herefordshire",
    "885": "Worcestershire",
    "886": "Kent",
    "887": "Medway",
    "888": "Lancashire",
    "889": "Blackburn with Darwen",
    "890": "Blackpool",
    "891": "Nottinghamshire",
    "892": "Nottingham",
    "893": "Shropshire",
    "894": "Telford and Wrekin",
    "895": "Cheshire East",
    "896": "Cheshire West and Chester",
    "908": "Cornwall",
    "909": "Cumbria",
    "916": "Gloucestershire",
    "919": "Hertfordshire",
    "921": "Isle of Wight",
    "925": "Lincolnshire",
    "926": "Norfolk",
    "928": "Northamptonshire",
    "929": "Northumberland",
    "931": "Oxfordshire",
    "933": "Somerset",
    "935": "Suffolk",
    "936": "Surrey",
    "937": "Warwickshire",
    "938": "West Sussex",
}

# First ten: a spread of shire counties, metropolitan and London boroughs, including the two
# planted outliers (890 Blackpool, high CPP hazard; 826 Milton Keynes, low CPP hazard).
_LEAD = ["886", "352", "890", "919", "202", "855", "826", "330", "931", "816"]
LA_ORDER: tuple[str, ...] = tuple(_LEAD + sorted(c for c in LA_NAMES if c not in _LEAD))

# Relative size of the 0-17 population (rough real-world tiers, not ONS figures): large shire
# counties and big cities are bigger than small unitaries; City of London and Isles of Scilly tiny.
_LARGE = {
    "886", "850", "888", "330", "881", "919", "936", "925", "926", "383", "935", "938",
    "860", "830", "891", "878", "873", "931", "380", "909", "855", "885", "916", "933",
}  # fmt: skip
_TINY = {"201": 0.02, "420": 0.01, "857": 0.15}


def la_size_tier(code: str) -> float:
    """Relative population size of an LA (1 = a typical unitary/metropolitan borough)."""
    if code in _TINY:
        return _TINY[code]
    return 2.6 if code in _LARGE else 1.0


def is_london(code: str) -> bool:
    return code.startswith("2") or ("301" <= code <= "320")


@cache
def postcode_area(code: str) -> str:
    """A two-letter pseudo postcode area for an LA (synthetic; derived from the LA name)."""
    letters = [c for c in LA_NAMES[code].upper() if c.isalpha()]
    return (letters[0] + letters[-1]) if len(letters) > 1 else "ZZ"
