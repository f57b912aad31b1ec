"""Breakout's screen geometry: every row, column and colour the aimbot relies on.

Rows grow downward, columns grow rightward; ranges are inclusive. Each constant was read
off real ALE frames (ale-py 0.12.1, ``BreakoutNoFrameskip-v4``) by printing, for every
row, the colours present and the columns they span; the comment on each says what was
seen. tests/test_aimbot_detection.py checks them on a real reset frame.
"""

from __future__ import annotations


#: ALE's native Atari frame: ``env.reset()`` returns (210, 160, 3) uint8.
SCREEN_HEIGHT = 210
SCREEN_WIDTH = 160
SCREEN_CHANNELS = 3
#: Colour of the walls and of the score digits.
WALL_COLOUR = (142, 142, 142)
#: Score and lives digits: grey [142, 142, 142] pixels only in rows 5-14 at reset.
SCORE_ROWS = (5, 14)
#: Top wall: rows 17-31 are grey [142, 142, 142] across all 160 columns.
TOP_WALL_ROWS = (17, 31)
#: Side walls: from row 32 down to row 188 every row is grey in columns 0-7 and 152-159.
LEFT_WALL_COLS = (0, 7)
RIGHT_WALL_COLS = (152, 159)
#: Playfield: the black columns between the side walls (8-151, 144 columns).
PLAYFIELD_COLS = (8, 151)
#: Playfield rows: from just below the top wall to the last row of the paddle.
PLAYFIELD_ROWS = (32, 192)
#: Bricks: rows 57-92, six bands of 6 rows, spanning columns 8-151 at reset. From the top the
#: band colours are [200, 72, 72] (the ball's colour), [198, 108, 58], [180, 122, 48],
#: [162, 162, 42], [72, 160, 72], [66, 72, 200].
BRICK_ROWS = (57, 92)
BRICK_BAND_HEIGHT = 6
N_BRICK_BANDS = 6
#: Ball and paddle colour [200, 72, 72] (same as the top brick band).
BALL_COLOUR = (200, 72, 72)
#: Ball sprite: tracked frame by frame (frameskip 1) it is 2 columns by 4 rows.
BALL_WIDTH = 2
BALL_HEIGHT = 4
#: Ball search area: rows 93-188 (below the bricks, above the paddle) inside the playfield.
#: At reset and in play the only non-black pixels there are the ball's.
BALL_SEARCH_ROWS = (93, 188)
BALL_SEARCH_COLS = PLAYFIELD_COLS
#: Paddle: rows 189-192 in the ball's colour, 16 px wide at the start (columns 99-114 at reset),
#: 12 px after the ball has reached the top wall.
PADDLE_ROWS = (189, 192)
PADDLE_START_WIDTH = 16
PADDLE_SMALL_WIDTH = 12
#: Bottom-right corner: columns 152-159 of rows 189-194 are also [200, 72, 72] (and columns
#: 0-7 of rows 189-195 are teal [66, 158, 130]), so the paddle is searched for in the playfield
#: columns only. A paddle pushed against the right wall therefore shows only its left part.
CORNER_ROWS = (189, 195)
#: Ball top row when it touches the paddle: tracked descents reach top row 186 (rows 186-189),
#: then the ball rises again.
BALL_TOP_ROW_AT_PADDLE = 186
#: Wall turns: the ball is hidden behind the walls (wall pixels win), and at speed 1 px/frame
#: the visible ball goes cols 8-9, 8 (so 7-8 with 7 hidden), 8-9 at the left wall and 150-151,
#: 151 (so 151-152), 150-151 at the right wall: its left edge turns at column 7 and column 151.
#: At 2 px/frame it turns one column further out (left edge 6): the specular model is exact to ~1 px.
BALL_LEFT_EDGE_AT_LEFT_WALL = 7
BALL_LEFT_EDGE_AT_RIGHT_WALL = 151
#: Rows below the paddle and the teal/red corner blocks: all black in every frame (rows 196-209).
#: The marker is drawn in the first four of them, as tall as the ball.
MARKER_ROWS = (196, 199)
MARKER_WIDTH = 4
#: Marker colours: pure green stands out from every Breakout colour in RGB; grey and mono use white.
MARKER_COLOUR_RGB = (0, 255, 0)
MARKER_VALUE_GREY = 255
#: The "trim" crop: the playfield from below the top wall to the marker rows, without the side
#: walls: 168 rows (exactly twice 84) by 144 columns.
TRIM_ROWS = (PLAYFIELD_ROWS[0], MARKER_ROWS[1])
TRIM_COLS = PLAYFIELD_COLS

# Ball-centre coordinates used by the prediction: the centre of a 2x4 sprite is its left
# column + 0.5 and its top row + 1.5.
#: Offsets from a sprite's top-left pixel to its centre: 0.5 columns and 1.5 rows.
BALL_CENTRE_COL_OFFSET = (BALL_WIDTH - 1) / 2
BALL_CENTRE_ROW_OFFSET = (BALL_HEIGHT - 1) / 2
#: Ball-centre column at which it turns at the left / right wall (7.5 and 151.5).
LEFT_WALL = BALL_LEFT_EDGE_AT_LEFT_WALL + BALL_CENTRE_COL_OFFSET
RIGHT_WALL = BALL_LEFT_EDGE_AT_RIGHT_WALL + BALL_CENTRE_COL_OFFSET
#: Ball-centre row at which it meets the paddle (187.5).
PADDLE_ROW = BALL_TOP_ROW_AT_PADDLE + BALL_CENTRE_ROW_OFFSET
