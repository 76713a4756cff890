namespace WeakSeg.Data.Coco;

/// <summary>
/// Polygon rasterisation with the pixel rule of pycocotools (polygon → RLE → mask), reimplemented:
/// coordinates are scaled by 5 and rounded (⌊5v + 0.5⌋); each edge is walked one step at a time along its longer axis
/// in that fine grid (the other coordinate rounded the same way). Wherever the walk crosses the vertical line through a
/// pixel centre (fine x between 5c+2 and 5c+3), it records a crossing in column c at row ⌈(min(fine y) + 0.5)/5 − 0.5⌉,
/// clamped to [0, H]. Each column is then filled even-odd between its sorted crossings (rows [y0,y1), [y2,y3), …).
/// In effect: a pixel is inside when its centre is inside the polygon (even-odd), with pycocotools' tie-breaking on edges.
/// Several polygons of one annotation are united (as pycocotools merges them).
/// </summary>
public static class CocoPolygon
{
    const int Fine = 5;

    /// <summary>Sets the pixels inside polygon <paramref name="xy"/> (x0,y0,x1,y1,…) to <paramref name="value"/>.</summary>
    public static void Paint(ReadOnlySpan<double> xy, LabelMap target, byte value)
    {
        int w = target.Width, h = target.Height;
        var columns = Crossings(xy, w, h);
        if (columns == null) return;
        var labels = target.Labels;
        for (int x = 0; x < w; x++)
        {
            var list = columns[x];
            if (list == null) continue;
            list.Sort();
            for (int i = 0; i + 1 < list.Count; i += 2)
                for (int y = list[i]; y < list[i + 1]; y++) labels[y * w + x] = value;
        }
    }

    /// <summary>The polygon as a row-major boolean mask.</summary>
    public static bool[] Rasterize(ReadOnlySpan<double> xy, int height, int width)
    {
        var map = new LabelMap(width, height);
        Paint(xy, map, 1);
        return map.Labels.Select(v => v == 1).ToArray();
    }

    static List<int>?[]? Crossings(ReadOnlySpan<double> xy, int w, int h)
    {
        int k = xy.Length / 2;
        if (k < 1) return null;
        var fx = new int[k + 1];
        var fy = new int[k + 1];
        for (int j = 0; j < k; j++)
        {
            fx[j] = (int)(Fine * xy[2 * j] + 0.5);
            fy[j] = (int)(Fine * xy[2 * j + 1] + 0.5);
        }
        fx[k] = fx[0]; fy[k] = fy[0];
        var columns = new List<int>?[w];
        bool havePrev = false;
        int prevU = 0, prevV = 0;
        for (int j = 0; j < k; j++)
        {
            int x0 = fx[j], y0 = fy[j], x1 = fx[j + 1], y1 = fy[j + 1];
            int dx = Math.Abs(x1 - x0), dy = Math.Abs(y1 - y0);
            bool alongX = dx >= dy;
            int steps = alongX ? dx : dy;
            // Walk from the end with the smaller major coordinate (the slope is computed that way), but emit points start→end.
            bool reversed = alongX ? x0 > x1 : y0 > y1;
            int ax = reversed ? x1 : x0, ay = reversed ? y1 : y0, bx = reversed ? x0 : x1, by = reversed ? y0 : y1;
            double slope = steps == 0 ? 0 : alongX ? (double)(by - ay) / dx : (double)(bx - ax) / dy;
            for (int d = 0; d <= steps; d++)
            {
                int t = reversed ? steps - d : d;
                int u, v;
                if (alongX) { u = ax + t; v = (int)(ay + slope * t + 0.5); }
                else { v = ay + t; u = (int)(ax + slope * t + 0.5); }
                if (havePrev && u != prevU) AddCrossing(columns, prevU, prevV, u, v, w, h);
                prevU = u; prevV = v; havePrev = true;
            }
        }
        return columns;
    }

    static void AddCrossing(List<int>?[] columns, int u0, int v0, int u1, int v1, int w, int h)
    {
        int lo = Math.Min(u0, u1);
        if (lo < 2 || (lo - 2) % Fine != 0) return; // not across a pixel-centre line
        int x = (lo - 2) / Fine;
        if (x > w - 1) return;
        double yd = (Math.Min(v0, v1) + 0.5) / Fine - 0.5;
        yd = Math.Clamp(yd, 0, h);
        int y = (int)Math.Ceiling(yd);
        (columns[x] ??= new List<int>()).Add(y);
    }
}
