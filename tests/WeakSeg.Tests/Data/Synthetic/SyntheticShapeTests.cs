using WeakSeg.Data.Synthetic;

namespace WeakSeg.Tests.Data.Synthetic;

public class SyntheticShapeTests
{
    /// <summary>Area of a shape's inside set by midpoint-grid integration over [-1.3, 1.3]².</summary>
    static double GridArea(ObjectShape shape, int n = 1000)
    {
        double h = 2.6 / n;
        long inside = 0;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < n; i++)
                if (shape.Inside(-1.3 + (i + 0.5) * h, -1.3 + (j + 0.5) * h)) inside++;
        return inside * h * h;
    }

    static double Lens(double d, double r, double R)
        => r * r * Math.Acos((d * d + r * r - R * R) / (2 * d * r)) + R * R * Math.Acos((d * d + R * R - r * r) / (2 * d * R))
           - 0.5 * Math.Sqrt((-d + r + R) * (d + r - R) * (d - r + R) * (d + r + R));

    [Theory]
    [InlineData(ShapeKind.Disc, 1)]
    [InlineData(ShapeKind.Boat, 2)]
    [InlineData(ShapeKind.Triangle, 3)]
    [InlineData(ShapeKind.Star, 4)]
    [InlineData(ShapeKind.Cross, 5)]
    [InlineData(ShapeKind.Blob, 6)]
    [InlineData(ShapeKind.Crescent, 7)]
    [InlineData(ShapeKind.Ring, 8)]
    [InlineData(ShapeKind.Hexagon, 9)]
    [InlineData(ShapeKind.Diamond, 10)]
    [InlineData(ShapeKind.Arrow, 11)]
    public void Shape_area_matches_its_closed_form(ShapeKind kind, int seed)
    {
        var s = ObjectShape.Sample(kind, new SyntheticRandom((ulong)seed));
        double expected = kind switch
        {
            ShapeKind.Disc => Math.PI,
            ShapeKind.Ring => Math.PI * (1 - s.A * s.A),
            ShapeKind.Triangle => 3 * Math.Sqrt(3) / 4,
            ShapeKind.Hexagon => 3 * Math.Sqrt(3) / 2,
            ShapeKind.Star => s.Points * s.A * Math.Sin(Math.PI / s.Points),
            ShapeKind.Cross => 8 * s.A - 4 * s.A * s.A,
            ShapeKind.Diamond => 2 * s.A,
            ShapeKind.Arrow => 2 * s.A * (1 + s.C) + s.B * (1 - s.C),
            ShapeKind.Blob => Math.PI * (1 + 0.5 * (Sq(s.Harmonics[0]) + Sq(s.Harmonics[2]) + Sq(s.Harmonics[4])))
                              / Sq(1 + s.Harmonics[0] + s.Harmonics[2] + s.Harmonics[4]),
            ShapeKind.Crescent => Math.PI - Lens(s.A * Math.Sqrt(1 + 0.15 * 0.15), 1, s.B),
            ShapeKind.Boat => s.B * (1 + s.C) + 0.14 * (s.A + 0.95) + 0.4 * (0.85 + s.A),
            _ => throw new InvalidOperationException(),
        };
        double measured = GridArea(s);
        Assert.True(Math.Abs(measured - expected) < 0.01 * expected, $"{kind}: grid area {measured:F4}, closed form {expected:F4}");
    }

    static double Sq(double x) => x * x;

    [Fact]
    public void Star_radius_alternates_between_outer_and_inner_vertices()
    {
        // 5 spikes, inner ratio 0.5: spike up (θ = −90°), inner vertex 36° later.
        Assert.Equal(1.0, ObjectShape.StarRadius(-Math.PI / 2, 5, 0.5), 12);
        Assert.Equal(0.5, ObjectShape.StarRadius(-Math.PI / 2 + Math.PI / 5, 5, 0.5), 12);
        Assert.Equal(1.0, ObjectShape.StarRadius(-Math.PI / 2 + 2 * Math.PI / 5, 5, 0.5), 12);
        // halfway along an edge (18° from the spike) the boundary point lies on the straight segment: r = inner·sin36°/(sin18° + inner·sin18°)
        double expected = 0.5 * Math.Sin(Math.PI / 5) / (Math.Sin(Math.PI / 10) * 1.5);
        Assert.Equal(expected, ObjectShape.StarRadius(-Math.PI / 2 + Math.PI / 10, 5, 0.5), 12);
    }

    [Fact]
    public void Classes_have_distinct_outline_area_ratios()
    {
        // Mean area over 20 instances, as a fraction of the [-1,1]² square: the outlines are not one shape in disguise.
        var ratios = SyntheticClassCatalog.All.Where(c => c.Shape != ShapeKind.Heart).Select(c =>
        {
            var rng = new SyntheticRandom(99);
            return Enumerable.Range(0, 20).Average(_ => GridArea(ObjectShape.Sample(c.Shape, rng), 200)) / 4;
        }).ToArray();
        // disc π/4 ≈ 0.785 is the largest; the triangle 3√3/16 ≈ 0.325 is among the smallest
        Assert.Equal(Math.PI / 4, ratios[0], 2);
        Assert.Equal(3 * Math.Sqrt(3) / 16, ratios[2], 2);
        int distinctPairs = 0, pairs = 0;
        for (int a = 0; a < ratios.Length; a++)
            for (int b = a + 1; b < ratios.Length; b++) { pairs++; if (Math.Abs(ratios[a] - ratios[b]) > 0.02) distinctPairs++; }
        Assert.True(distinctPairs >= pairs * 0.85, $"{distinctPairs}/{pairs} pairs differ by > 0.02: {string.Join(' ', ratios.Select(r => r.ToString("F3")))}");
    }

    [Fact]
    public void Supersampling_antialiases_edges_while_the_mask_stays_hard()
    {
        var white = new Rgb(1, 1, 1);
        var texture = new ObjectTexture(TextureKind.Gradient, white, white);
        var disc = new ObjectPlacement(1, new ObjectShape(ShapeKind.Disc), texture, 20.2, 21.7, 10.3, 0.3, 1.0, false);
        Rgb Black(double x, double y) => default;
        double area = Math.PI * 10.3 * 10.3; // 333.3 px²

        var aa = SyntheticImageGenerator.RenderSupersampled([disc], Black, 48, 4);
        Assert.Equal(area, aa.Sum(c => c.R), area * 0.005);
        int partial = aa.Count(c => c.R > 0 && c.R < 1);
        Assert.InRange(partial, 40, 140); // roughly the perimeter 2π·10.3 ≈ 65 px

        var hard = SyntheticImageGenerator.RenderSupersampled([disc], Black, 48, 1);
        Assert.All(hard, c => Assert.True(c.R == 0 || c.R == 1));

        var instances = SyntheticImageGenerator.InstanceMap([disc], 48);
        Assert.All(instances, v => Assert.True(v is 0 or 1));
        Assert.Equal(area, instances.Count(v => v == 1), area * 0.03);
    }

    [Fact]
    public void Ignore_band_straddles_every_outline_by_one_pixel()
    {
        // 6×6 instance map with a 2×2 object at x,y ∈ {2,3}.
        var inst = new byte[36];
        foreach (var (x, y) in new[] { (2, 2), (3, 2), (2, 3), (3, 3) }) inst[y * 6 + x] = 1;
        var band = SyntheticImageGenerator.IgnoreBand(inst, 6, 1);
        var expected = new HashSet<(int, int)> { (2, 2), (3, 2), (2, 3), (3, 3), (2, 1), (3, 1), (1, 2), (1, 3), (4, 2), (4, 3), (2, 4), (3, 4) };
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 6; x++)
                Assert.True(band[y * 6 + x] == expected.Contains((x, y)), $"pixel ({x},{y})");
        Assert.DoesNotContain(true, SyntheticImageGenerator.IgnoreBand(inst, 6, 0));
    }
}
