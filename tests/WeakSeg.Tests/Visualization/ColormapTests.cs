using WeakSeg.Visualization;

namespace WeakSeg.Tests.Visualization;

public sealed class ColormapTests
{
    [Fact]
    public void Turbo_EndsAndSamplesAreThePublishedTableEntries()
    {
        Assert.Equal(((byte)48, (byte)18, (byte)59), Colormap.Turbo(0f));        // table entry 0: 0.18995, 0.07176, 0.23217
        Assert.Equal(((byte)122, (byte)4, (byte)3), Colormap.Turbo(1f));         // entry 255: 0.47960, 0.01583, 0.01055
        Assert.Equal(((byte)54, (byte)33, (byte)95), Colormap.Turbo(5f / 255));  // entry 5: 0.21291, 0.12947, 0.37314
    }

    [Theory]
    [InlineData(100, 0.24797, 0.96423, 0.54303)]
    [InlineData(128, 0.64362, 0.98999, 0.23356)]
    [InlineData(203, 0.94538, 0.36638, 0.07461)]
    public void Turbo_BetweenSamples_IsWithinOneLevelOfTheFullTable(int entry, double r, double g, double b)
    {
        var (R, G, B) = Colormap.Turbo(entry / 255f);
        Assert.InRange(R, r * 255 - 1, r * 255 + 1);
        Assert.InRange(G, g * 255 - 1, g * 255 + 1);
        Assert.InRange(B, b * 255 - 1, b * 255 + 1);
    }

    [Fact]
    public void Turbo_Quarter_InterpolatesSamples12And13()
    {
        // 0.25·255/5 = 12.75: samples 12 (47,178,244) and 13 (39,190,233), t = 0.75 → (41, 187, 235.75 → 236)
        Assert.Equal(((byte)41, (byte)187, (byte)236), Colormap.Turbo(0.25f));
    }

    [Fact]
    public void Colormaps_ClampOutOfRangeAndNaN()
    {
        Assert.Equal(Colormap.Turbo(0f), Colormap.Turbo(-3f));
        Assert.Equal(Colormap.Turbo(0f), Colormap.Turbo(float.NaN));
        Assert.Equal(Colormap.Turbo(1f), Colormap.Turbo(7f));
        Assert.Equal(Colormap.Jet(1f), Colormap.Jet(1.5f));
    }

    [Theory]
    [InlineData(0f, 0, 0, 128)]      // blue 0.5 → 127.5 rounds up
    [InlineData(0.125f, 0, 0, 255)]  // green starts rising after 0.125, blue saturated from 0.11
    [InlineData(0.5f, 123, 255, 123)] // red (0.5−0.35)/0.31 = 0.4839 → 123.4; blue (0.65−0.5)/0.31 → 123.4
    [InlineData(0.75f, 255, 151, 0)] // green 1 − (0.75−0.64)/0.27 = 0.5926 → 151.1
    [InlineData(1f, 128, 0, 0)]      // red 0.5
    public void Jet_MatchesMatplotlibKnots(float v, int r, int g, int b)
    {
        Assert.Equal(((byte)r, (byte)g, (byte)b), Colormap.Jet(v));
    }
}
