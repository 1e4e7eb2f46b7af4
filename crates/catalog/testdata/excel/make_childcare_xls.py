"""Writes childcare_title_rows.xls, the xls test file of crates/catalog/tests/ingest.rs.

An empty first sheet, then a sheet as offices make them: a title row, a blank
row, the header of the v1 子育て施設一覧 (v1-13-childcare-facilities) and two
rows with real date, time and number cells. Run with xlwt 1.3.0 (PyPI):
    python3 make_childcare_xls.py
The Rust test builds the same sheet as xlsx with rust_xlsxwriter.
"""
import datetime
import xlwt

HEADER = ("都道府県コード又は市区町村コード,NO,都道府県名,市区町村名,名称,名称_カナ,種別,住所,方書,"
          "緯度,経度,アクセス方法,駐車場情報,電話番号,内線番号,FAX番号,法人番号,団体名,認可等年月日,"
          "収容定員,受入年齢,利用可能曜日,開始時間,終了時間,利用可能日時特記事項,一時預かりの有無,URL,備考").split(",")

DATE = xlwt.easyxf(num_format_str="yyyy/mm/dd")
TIME = xlwt.easyxf(num_format_str="h:mm")

book = xlwt.Workbook(encoding="utf-8")
book.add_sheet("表紙")
sheet = book.add_sheet("子育て施設")
sheet.write(0, 0, "焼津市 子育て施設一覧")
for col, name in enumerate(HEADER):
    sheet.write(2, col, name)
rows = [
    [222127, 1, "静岡県", "焼津市", "さくら保育園", "サクラホイクエン", "認可私立保育所",
     "静岡県焼津市本町1-1", None, 34.866918, 138.323171, None, None, "(054)626-1139", None, None,
     None, None, datetime.date(2015, 4, 1), 90, "0歳～5歳", "月～土", datetime.time(7, 30),
     datetime.time(18, 30), None, "有", None, None],
    [222127, 2, "静岡県", "焼津市", "ＣＯＣＯＲＯ保育園", "ココロホイクエン", "認可外保育所",
     "静岡県焼津市本町2-2", None, 34.87, 138.32, None, None, "054-626-0000", None, None,
     None, None, "令和5年4月1日", "七十", None, None, datetime.time(8, 0),
     datetime.time(17, 0), None, "無", None, None],
]
for r, row in enumerate(rows, start=3):
    for col, value in enumerate(row):
        if value is None:
            continue
        if isinstance(value, datetime.date):
            sheet.write(r, col, value, DATE)
        elif isinstance(value, datetime.time):
            sheet.write(r, col, value, TIME)
        else:
            sheet.write(r, col, value)
book.save("childcare_title_rows.xls")
